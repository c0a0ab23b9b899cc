"""What the model already knew: perplexity of reference answers to a small bundled set of general
questions (assets/general_knowledge.jsonl, English and Chinese), base vs fine-tuned.

The base is the run's model with its adapter off, so "before" and "after" training are measured on one
model in memory. A fine-tune that raised this perplexity markedly has pushed out general ability (the
usual catastrophic-forgetting symptom); the remedy the studio can offer is more general chat rows in the
training mix (the Data tab's "general share"), so the verdict says how much.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Iterator

from studio import run_files
from studio.evaluate.generate import MODELS, ModelPair, answer_nll, device_turn
from studio.messages import Msg
from studio.models.chat import prompt_and_reference
from studio.paths import ASSETS_DIR

GENERAL_SET = ASSETS_DIR / "general_knowledge.jsonl"
# Relative change of perplexity: below SLIGHT it is noise for a set this small; from MARKED on, the
# model answers general questions noticeably worse and the mix should change.
SLIGHT, MARKED = 0.05, 0.20
# The general share to recommend, by how much perplexity rose (the largest step not above the rise).
SHARE_STEPS = ((MARKED, 0.10), (0.5, 0.20), (1.0, 0.30))


def general_rows(path: str | Path = GENERAL_SET) -> list[tuple[str, list[dict], str]]:
    """(language, prompt messages, reference answer) of each row of the bundled set."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            prompt, reference = prompt_and_reference(rec["messages"])
            rows.append((rec.get("lang", "en"), prompt, reference))
    return rows


def _ppl(total: float, count: int) -> float | None:
    return math.exp(total / count) if count else None


def forgetting_steps(pair: ModelPair, rows: list | None = None, batch_size: int = 8,
                     is_busy: Callable[[], bool] | None = None, train_rows: int = 0) -> Iterator[dict]:
    """Perplexity of the reference answers per model and language, a batch per device turn (so a blind
    round can slip in between). Ends with {"stage": "done", "result": eval.json's "general" section}."""
    rows = rows if rows is not None else general_rows()
    langs = sorted({r[0] for r in rows})
    t0 = time.time()
    sums: dict[str, dict[str, list]] = {w: {lang: [0.0, 0] for lang in langs} for w in MODELS}
    total_batches = len(MODELS) * sum(math.ceil(sum(r[0] == lang for r in rows) / batch_size) for lang in langs)
    done = 0
    for which in MODELS:
        for lang in langs:
            mine = [(m, ref) for lg, m, ref in rows if lg == lang]
            for start in range(0, len(mine), batch_size):
                with device_turn(is_busy), pair.use(which) as model:
                    s, c = answer_nll(model, pair.tokenizer, mine[start:start + batch_size], batch_size)
                sums[which][lang][0] += s
                sums[which][lang][1] += c
                done += 1
                yield {"stage": "general", "model": which, "done": done, "total": total_batches}
    result: dict = {"n": len(rows), "set": GENERAL_SET.name}
    for which in MODELS:
        total = sum(v[0] for v in sums[which].values())
        count = sum(v[1] for v in sums[which].values())
        result[which] = {"perplexity": _ppl(total, count), "answer_tokens": count,
                         **{f"perplexity_{lang}": _ppl(*sums[which][lang]) for lang in langs}}
    result.update(judge(result["base"]["perplexity"], result["finetuned"]["perplexity"], train_rows))
    result.update(duration_s=round(time.time() - t0, 2), time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    yield {"stage": "done", "result": result}


def judge(before: float | None, after: float | None, train_rows: int = 0) -> dict:
    """{"change": relative change of perplexity, "verdict": improved|kept|slight|marked,
    "recommended_general_share": a share of the training mix or None, "recommended_rows": how many rows
    that is beside `train_rows` of the person's own}."""
    if not before or not after:
        return {"change": None, "verdict": None, "recommended_general_share": None, "recommended_rows": None}
    change = after / before - 1
    verdict = ("improved" if change <= -SLIGHT else "kept" if change < SLIGHT
               else "slight" if change < MARKED else "marked")
    share = None
    for threshold, step in SHARE_STEPS:
        if change >= threshold:
            share = step
    rows = round(train_rows * share / (1 - share)) if share and train_rows else None
    return {"change": change, "verdict": verdict, "recommended_general_share": share, "recommended_rows": rows}


def verdict_msg(result: dict) -> Msg | None:
    """The change in plain words, with the recommendation when general ability dropped markedly."""
    if not result or not result.get("verdict"):
        return None
    base, ft = result["base"]["perplexity"], result["finetuned"]["perplexity"]
    said = Msg(f"eval.general.{result['verdict']}", before=base, after=ft, pct=abs(result["change"]) * 100,
               n=result["n"])
    share = result.get("recommended_general_share")
    if not share:
        return said
    advice = (Msg("eval.general.advice_rows", share=share * 100, rows=result["recommended_rows"])
              if result.get("recommended_rows") else Msg("eval.general.advice", share=share * 100))
    return Msg("eval.general.with_advice", verdict=said, advice=advice)


def train_rows_of(run_dir: str | Path) -> int:
    """Rows the run trained on (data/train.jsonl), for the recommendation in rows."""
    path = run_files.train_data(run_dir)
    try:
        with path.open(encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0
