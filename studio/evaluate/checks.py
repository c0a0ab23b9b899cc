"""Automatic checks, base vs fine-tuned: metrics on a labelled set, a consistency test, edge cases.

Each check is a generator of progress events ending with {"stage": "done", "result": ...}, so the
Compare tab can show a progress bar and the CLI a line on stderr; `run_to_end()` drives one to the end.
Work goes to the device batch by batch (`device_turn`), so a blind round can slip in between batches
instead of waiting for the whole evaluation. Results are merged into the run's eval.json.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from studio import run_files
from studio.evaluate.generate import (MODELS, GenerationSettings, ModelPair, answer_nll, device_turn,
                                      generate_batch)
from studio.evaluate.metrics import agreement, bleu_tokenizer, contains, exact_match, rouge_l, text_scores
from studio.evaluate.rows import EvalRow
from studio.files import atomic_write_json

EVAL_FILE = run_files.EVAL
CONSISTENCY_SETTINGS = GenerationSettings(max_new_tokens=64, temperature=0.7, top_p=0.9, seed=0)
_eval_lock = threading.Lock()


def run_to_end(events: Iterator[dict], on_progress: Callable[[dict], None] | None = None):
    """Consume a check's events; returns the final result."""
    for event in events:
        if event.get("stage") == "done":
            return event["result"]
        if on_progress:
            on_progress(event)
    raise RuntimeError("the check ended without a result")


def _order_by_length(rows: list[EvalRow]) -> list[int]:
    # Longest first: rows of similar length share a batch (less padding), and a row too long for memory
    # fails at once rather than at the end.
    return sorted(range(len(rows)), key=lambda i: -sum(len(m["content"]) for m in rows[i].messages))


# ---- metrics on a labelled set -------------------------------------------------------------------
def score_steps(pair: ModelPair, rows: list[EvalRow], settings: GenerationSettings | None = None,
                batch_size: int = 8, is_busy: Callable[[], bool] | None = None,
                max_length: int = 1024) -> Iterator[dict]:
    """Greedy answers of both models to every row, then exact match, ROUGE-L, BLEU and the perplexity
    of the reference answers. The final result is eval.json's metrics part:
    {"base": {...}, "finetuned": {...}, "n", "rows": [...], ...}."""
    settings = settings or GenerationSettings()
    settings = GenerationSettings(**{**settings.to_dict(), "temperature": 0.0})  # metrics need determinism
    tok, n = pair.tokenizer, len(rows)
    order = _order_by_length(rows)
    batch_size = max(1, batch_size)
    answers: dict[str, list[str]] = {}
    nll: dict[str, tuple[float, int]] = {}
    t0 = time.time()
    for which in MODELS:
        out: dict[int, str] = {}
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            with device_turn(is_busy), pair.use(which) as model:
                got = generate_batch(model, tok, [rows[i].messages for i in idx], settings, batch_size)
            out.update(zip(idx, got))
            yield {"stage": "generate", "model": which, "done": len(out), "total": n}
        answers[which] = [out[i] for i in range(n)]
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            with device_turn(is_busy), pair.use(which) as model:
                s, c = answer_nll(model, tok, [(rows[i].messages, rows[i].reference) for i in idx],
                                  batch_size, max_length)
            total, count = total + s, count + c
            yield {"stage": "perplexity", "model": which, "done": min(start + batch_size, n), "total": n}
        nll[which] = (total, count)

    references = [r.reference for r in rows]
    result: dict = {"n": n}
    for which in MODELS:
        total, count = nll[which]
        scores = text_scores(answers[which], references)
        scores["perplexity"] = math.exp(total / count) if count else None
        scores["answer_tokens"] = count
        result[which] = scores
    result.update({
        "bleu_tokenize": bleu_tokenizer(references),
        "settings": settings.to_dict(),
        "duration_s": round(time.time() - t0, 2),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": [{"prompt": r.prompt_text, "reference": r.reference,
                  "base": answers["base"][i], "finetuned": answers["finetuned"][i],
                  "exact_match_base": exact_match(answers["base"][i], r.reference),
                  "exact_match_finetuned": exact_match(answers["finetuned"][i], r.reference),
                  "contains_base": contains(answers["base"][i], r.reference),
                  "contains_finetuned": contains(answers["finetuned"][i], r.reference),
                  "rouge_l_base": rouge_l(answers["base"][i], r.reference),
                  "rouge_l_finetuned": rouge_l(answers["finetuned"][i], r.reference)}
                 for i, r in enumerate(rows)],
    })
    yield {"stage": "done", "result": result}


# ---- consistency: the same question N times --------------------------------------------------------
def consistency_steps(pair: ModelPair, prompts: list, n: int = 5, settings: GenerationSettings | None = None,
                      is_busy: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Ask each prompt `n` times with sampling (same settings and seed for both models) and measure how
    much the answers agree: mean pairwise ROUGE-L, share of identical pairs, share of the most common
    answer. A model that learned the task answers the same way each time."""
    settings = settings or CONSISTENCY_SETTINGS
    n = max(2, int(n))
    items = []
    for k, prompt in enumerate(prompts):
        item: dict = {"prompt": _prompt_text(prompt)}
        for which in MODELS:
            with device_turn(is_busy), pair.use(which) as model:
                got = generate_batch(model, pair.tokenizer, [prompt], settings, num_return_sequences=n)
            item[which] = {"answers": got, **agreement(got)}
        items.append(item)
        yield {"stage": "consistency", "done": k + 1, "total": len(prompts)}
    summary = {which: {key: (sum(it[which][key] for it in items) / len(items) if items else None)
                       for key in ("mean_rouge_l", "identical_pairs", "majority_share")} for which in MODELS}
    yield {"stage": "done", "result": {"n": n, "settings": settings.to_dict(), "prompts": items, **summary}}


# ---- edge cases --------------------------------------------------------------------------------------
def edge_case_steps(pair: ModelPair, prompts: list, settings: GenerationSettings | None = None,
                    is_busy: Callable[[], bool] | None = None) -> Iterator[dict]:
    """The user's tricky prompts (off-topic, ambiguous, adversarial...), answered greedily by both."""
    settings = settings or GenerationSettings()
    prompts = [p for p in prompts if (p.strip() if isinstance(p, str) else p)]
    answers = {}
    for k, which in enumerate(MODELS):
        with device_turn(is_busy), pair.use(which) as model:
            answers[which] = generate_batch(model, pair.tokenizer, prompts, settings)
        yield {"stage": "edge_cases", "model": which, "done": k + 1, "total": len(MODELS)}
    items = [{"prompt": _prompt_text(p), "base": answers["base"][i], "finetuned": answers["finetuned"][i]}
             for i, p in enumerate(prompts)]
    yield {"stage": "done", "result": {"settings": settings.to_dict(), "items": items}}


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


# ---- eval.json -----------------------------------------------------------------------------------------
def read_eval(run_dir: str | Path) -> dict:
    import json

    path = Path(run_dir) / EVAL_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def update_eval(run_dir: str | Path, **sections) -> dict:
    """Merge sections into eval.json (atomically): metrics, consistency and edge cases are computed at
    different times and each run replaces only its own part."""
    with _eval_lock:
        data = read_eval(run_dir)
        data.update(sections)
        atomic_write_json(Path(run_dir) / EVAL_FILE, data)
    return data


ROWS_BUDGET_S = 60  # the automatic checks' default size: about a minute on this machine
FIRST_ROWS = {"cuda": 100, "mps": 40, "cpu": 20}  # before any scoring was timed on this run's model and device


def suggested_rows(run_dir: str | Path, max_new_tokens: int = 128, budget_s: float = ROWS_BUDGET_S
                   ) -> tuple[int, float | None]:
    """(rows to score, about how many seconds that takes) for the automatic checks. The time per row is
    measured: the last scoring of this run, or of another run of the same model on the same device (answers
    are generated token by token, so the time scales with max_new_tokens). None seconds when never measured."""
    from studio.engine import runs

    def timing_of(rd) -> float | None:
        t = read_eval(rd).get("timing") or {}
        if t.get("seconds_per_row") and t.get("max_new_tokens"):
            return float(t["seconds_per_row"]) * max(1, max_new_tokens) / float(t["max_new_tokens"])
        return None

    mine = runs.read_summary(run_dir)
    per_row = timing_of(run_dir)
    if per_row is None:
        for rd in runs.list_runs(Path(run_dir).parent)[:30]:
            s = runs.read_summary(rd)
            if s.get("model") == mine.get("model") and s.get("device") == mine.get("device"):
                per_row = timing_of(rd)
                if per_row:
                    break
    if not per_row:
        return FIRST_ROWS.get(mine.get("device") or "cpu", 20), None
    rows = max(5, min(500, int(budget_s / per_row)))
    return rows, rows * per_row


def save_metrics(run_dir: str | Path, result: dict, data_file: str = "") -> dict:
    """The metrics result at eval.json's top level ({"base", "finetuned", ...}, the CLI contract)."""
    return update_eval(run_dir, **result, data_file=str(data_file))
