"""The Compare tab's automatic checks as generators of page updates: scores on the validation split,
the consistency test, edge cases (each with a progress bar, saved to eval.json), and every table as CSV.
No gradio here."""

from __future__ import annotations

import html
import time
from typing import Callable, Iterator

from studio.data.read import lines_of
from studio.engine.job import is_busy as training_busy
from studio.errors import StudioError
from studio.evaluate import report
from studio.evaluate.arena import get_arena
from studio.evaluate.blind import _session_folder, generation_settings, validation_file, validation_prompts
from studio.evaluate.checks import (CONSISTENCY_SETTINGS, consistency_steps, edge_case_steps, save_metrics,
                                    score_steps, update_eval)
from studio.evaluate.generate import GenerationSettings, check_free
from studio.evaluate.rows import load_rows
from studio.evaluate.runs import checked_run
from studio.evaluate.forgetting import forgetting_steps, train_rows_of
from studio.evaluate.views import (consistency_view, edge_view, general_view, message, metrics_view, model_name,
                                   rows_choice)
from studio.messages import say

MAX_EDGE_CASES = 100


def progress_html(label: str = "", fraction: float | None = None) -> str:
    if fraction is None:
        return ""
    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div class="compare-progress" data-pct="{pct:.0f}">'
            f'<progress max="100" value="{pct:.0f}" style="width:100%;height:14px"></progress>'
            f'<div style="font-size:0.9em">{html.escape(label)} · {pct:.0f}%</div></div>')


def _stage_label(event: dict, lang: str, n: int = 0) -> str:
    model = model_name(event["model"], lang) if event.get("model") else ""
    return say(f"compare.stage.{event['stage']}", lang, model=model, n=n)


def _score_fraction(event: dict) -> float:
    # score_steps: per model, generation then perplexity, each over all rows.
    m = 0 if event.get("model") == "base" else 1
    s = 0 if event["stage"] == "generate" else 1
    total = max(1, event.get("total") or 1)
    return (m * 2 + s + min(event["done"], total) / total) / 4


def _prepare(run_dir, lang, is_busy):
    rd = checked_run(run_dir)
    check_free(is_busy)
    return rd


def run_scores(run_dir: str | None, max_rows=100, max_new_tokens=128, lang: str = "en",
               is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """Exact match, ROUGE-L, BLEU and perplexity on the validation split, with progress; saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        data_file = validation_file(rd)
        if data_file is None:
            raise StudioError("compare.no_eval_data")
        rows = load_rows(data_file, max(0, int(max_rows or 0)))
        yield {"checks_status": "", "progress": progress_html(say("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).models()
        settings = GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or 128)))
        result, started = None, time.monotonic()
        for event in score_steps(pair, rows, settings, batch_size=8, is_busy=is_busy):
            if event["stage"] == "done":
                result = event["result"]
                break
            yield {"progress": progress_html(_stage_label(event, lang), _score_fraction(event))}
        save_metrics(rd, result, str(data_file))
        if rows:  # measured, for the next default size (checks.suggested_rows)
            update_eval(rd, timing={"seconds_per_row": round((time.monotonic() - started) / len(rows), 3),
                                    "max_new_tokens": settings.max_new_tokens})
        hint = rows_choice(rd, lang, settings.max_new_tokens)["rows_hint"]  # now measured
        yield {"progress": "", **metrics_view(result, lang), "rows_hint": hint}
    except Exception as e:
        yield {"progress": "", "checks_status": message(e, lang)}


def run_consistency(run_dir: str | None, times=5, n_prompts=5, max_new_tokens=128, temperature=0.0, seed=0,
                    lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """The first `n_prompts` validation prompts, each asked `times` times with sampling (the arena's
    temperature when it samples, else the engine's 0.7); saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        prompts = [r.messages for r in validation_prompts(rd)[:max(1, int(n_prompts or 1))]]
        if not prompts:
            raise StudioError("compare.no_eval_data")
        times = max(2, int(times or 2))
        yield {"checks_status": "", "progress": progress_html(say("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).models()
        base = CONSISTENCY_SETTINGS
        settings = GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or base.max_new_tokens)),
                                      temperature=float(temperature) if temperature and temperature > 0 else base.temperature,
                                      top_p=base.top_p, seed=int(seed or 0))
        result = None
        for event in consistency_steps(pair, prompts, times, settings, is_busy=is_busy):
            if event["stage"] == "done":
                result = event["result"]
                break
            yield {"progress": progress_html(_stage_label(event, lang, times), event["done"] / max(1, event["total"]))}
        update_eval(rd, consistency=result)
        yield {"progress": "", **consistency_view(result, lang)}
    except Exception as e:
        yield {"progress": "", "checks_status": message(e, lang)}


def run_edge_cases(run_dir: str | None, prompts_text: str, max_new_tokens=128, temperature=0.0, seed=0,
                   lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """The user's prompts, one a line, answered by both models with the arena's settings; saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        prompts = [line.strip() for line in lines_of(prompts_text or "") if line.strip()][:MAX_EDGE_CASES]
        if not prompts:
            raise StudioError("compare.no_edge")
        yield {"checks_status": "", "progress": progress_html(say("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).models()
        result = None
        steps = edge_case_steps(pair, prompts, generation_settings(max_new_tokens, temperature, seed), is_busy=is_busy)
        yield {"progress": progress_html(_stage_label({"stage": "edge_cases", "model": "base"}, lang), 0.0)}
        for event in steps:
            if event["stage"] == "done":
                result = event["result"]
                break
            nxt = {"stage": "edge_cases", "model": "finetuned" if event.get("model") == "base" else event.get("model")}
            yield {"progress": progress_html(_stage_label(nxt, lang), event["done"] / max(1, event["total"]))}
        update_eval(rd, edge_cases=result)
        yield {"progress": "", **edge_view(result, lang)}
    except Exception as e:
        yield {"progress": "", "checks_status": message(e, lang)}


def run_general(run_dir: str | None, lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """Perplexity on the bundled general questions, adapter off and on, with progress; saved to eval.json
    as "general" (the model card shows it)."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        yield {"checks_status": "", "progress": progress_html(say("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).models()
        result = None
        for event in forgetting_steps(pair, is_busy=is_busy, train_rows=train_rows_of(rd)):
            if event["stage"] == "done":
                result = event["result"]
                break
            yield {"progress": progress_html(_stage_label(event, lang), event["done"] / max(1, event["total"]))}
        update_eval(rd, general=result)
        yield {"progress": "", **general_view(result, lang)}
    except Exception as e:
        yield {"progress": "", "checks_status": message(e, lang)}


def export(run_dir: str | None, lang: str = "en", session: str | None = None) -> dict:
    """Every table of the tab as CSV, offered as downloads: into a new folder of the session's own from the
    page (two people exporting at once never overwrite each other's files), else RUN/eval_export/."""
    try:
        rd = checked_run(run_dir)
    except StudioError as e:
        return {"checks_status": message(e, lang), "files": None}
    written = report.export_csv(rd, _session_folder(session, "compare-exports", rd) if session else None)
    if not written:
        return {"checks_status": say("compare.nothing_to_export", lang), "files": None}
    return {"checks_status": say("compare.exported", lang, n=len(written), dir=written[0].parent),
            "files": [str(p) for p in written]}
