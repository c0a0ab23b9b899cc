"""The two data shapes the CPU throughput benchmark trains on, as canonical rows ({"messages": [...]}).

- reviews: the quickstart's sample (assets/samples/reviews_sentiment.jsonl), short rows (70-100 tokens)
  with one-word answers;
- alpaca: Alpaca-style rows (instruction, optional context, a long answer) of 100-256 tokens, built
  deterministically from the English conversations shipped in assets/ (no download needed): each row's
  length is drawn uniformly from 100-256 tokens and reached by adding context passages.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def reviews() -> list[dict]:
    from studio.engine.datasets import load_rows

    return load_rows(ROOT / "assets/samples/reviews_sentiment.jsonl")[0]


def _english_pairs() -> list[tuple[str, str]]:
    pairs = []
    for name in ("assets/general_chat.jsonl", "assets/refusals.jsonl", "assets/samples/dpo_preferences.jsonl"):
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if "messages" in r:
                user = [m["content"] for m in r["messages"] if m["role"] == "user"]
                answer = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
                pair = (user[0], answer[-1]) if user and answer else None
            else:
                prompt = r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][-1]["content"]
                pair = (prompt, str(r["chosen"]))
            if pair and not _CJK.search(pair[0] + pair[1]):
                pairs.append(pair)
    return pairs


def alpaca(tok, n: int = 400, seed: int = 0, low: int = 100, high: int = 256) -> list[dict]:
    """n Alpaca-style rows of low-high tokens under the model's chat template (measured with `tok`)."""
    from studio.models.chat import tokenize_conversation

    rng = random.Random(seed)
    pairs = _english_pairs()
    passages = [a for _, a in pairs]
    rows = []
    while len(rows) < n:
        question, answer = rng.choice(pairs)
        target = rng.randint(low, high)
        context: list[str] = []
        row = None
        for _ in range(12):
            user = question if not context else f"{question}\n\nContext:\n" + "\n".join(context)
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
            length = len(tokenize_conversation(tok, messages)["input_ids"])
            if length > high:
                break
            row = {"messages": messages}
            if length >= target:
                break
            context.append(rng.choice(passages))
        if row is not None and length >= low and length <= high:
            rows.append(row)
    return rows
