"""The Compare tab: a blind A/B test of the base and fine-tuned models, its tally, 1-5 ratings, the data
flywheel (winning answers -> DPO pairs), and the automatic checks on the validation split.

Blind by construction (FastChat's anonymous arena, without its globals): which model is A lives only in
the run's `Arena` (studio.evaluate.arena) on the server. The session keeps a round id, a random token, in
a gr.State (which stays on the server too); the page sees two answers labelled A and B. The sides come
back only from `Arena.vote` / `Arena.rate`, which write the judgement to votes.jsonl first. A voter is the
anonymous hash of a random token the browser keeps in its localStorage (gr.BrowserState), so a person who
reloads the page is still one voter in the per-voter tally.

The handlers are plain functions over plain values that return dicts keyed by names ("answer_a",
"tally_md", ...); `build(ctx)` maps those names to components. So the tests drive the whole tab without a
browser, and check that nothing a handler sends before a vote names a model.
"""

from __future__ import annotations

import html
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import gradio as gr
import pandas as pd

from studio import paths
from studio.engine import runs
from studio.engine.job import is_busy as training_busy
from studio.errors import StudioError, error_text
from studio.evaluate import report
from studio.evaluate import votes as votes_mod
from studio.evaluate.arena import get_arena, new_voter_token, voter_id_for
from studio.evaluate.checks import (CONSISTENCY_SETTINGS, consistency_steps, edge_case_steps, read_eval,
                                    save_metrics, score_steps, update_eval)
from studio.evaluate.generate import DeviceBusy, GenerationSettings, check_free
from studio.evaluate.rows import EvalRow, load_rows, sample_row
from studio.evaluate.tally import Tally, rating_summary, tally, tally_by_voter
from studio.ui.i18n import lang_of, t, text

# ---- strings ---------------------------------------------------------------------------------------


TITLE = t("compare.tab")
CHOICES = ("A", "B", "tie", "both_bad")
SCORES = ["1", "2", "3", "4", "5"]
MAX_EDGE_CASES = 100
SHOWN_WITH_VALUE = {"tally_plot", "ratings_plot", "ratings_table", "metrics_plot", "metrics_table", "rows_table",
                    "consistency_plot", "consistency_table", "edge_table", "files", "progress"}

# ---- runs --------------------------------------------------------------------------------------------


def has_model(run_dir: str | Path) -> bool:
    rd = Path(run_dir)
    return (rd / "adapter" / "adapter_config.json").is_file() or (rd / "model" / "config.json").is_file()


def run_choices() -> list[tuple[str, str]]:
    """Runs with a trained model (an adapter, or full weights), newest first, as (name, folder)."""
    return [(rd.name, str(rd)) for rd in runs.list_runs() if has_model(rd)]


def checked_run(run_dir: str | None, lang: str = "en") -> Path:
    """The run folder, if it is one the app lists: a value from the browser never names another folder."""
    if run_dir:
        want = paths.confine(run_dir)  # the one gate for paths from the page; then: a listed run
        for rd in runs.list_runs():
            if rd.resolve() == want and has_model(rd):
                return rd
    raise StudioError(text("compare.no_run", "en"), text("compare.no_run", "zh"))


def validation_file(run_dir: str | Path) -> Path | None:
    """The run's validation split, or its training data when it had none (what `validation_rows` reads)."""
    data = Path(run_dir) / "data"
    for name in ("eval.jsonl", "train.jsonl"):
        if (data / name).is_file():
            return data / name
    return None


@lru_cache(maxsize=8)
def _rows_cached(path: str, mtime: float) -> tuple[EvalRow, ...]:
    try:
        return tuple(load_rows(path))
    except StudioError:
        return ()


def validation_prompts(run_dir: str | Path) -> list[EvalRow]:
    f = validation_file(run_dir)
    return list(_rows_cached(str(f), f.stat().st_mtime)) if f else []


def describe_run(run_dir: str | None, lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> str:
    if not run_dir:
        return text("compare.no_runs", lang) if not run_choices() else text("compare.no_run", lang)
    try:
        rd = checked_run(run_dir, lang)
        cfg = runs.load_run_config(rd)
    except StudioError as e:
        return "⚠️ " + error_text(e, lang)
    records = votes_mod.read_records(rd / votes_mod.VOTES_FILE)
    kind = "lora" if (rd / "adapter" / "adapter_config.json").is_file() else "full"
    line = text("compare.run_line", lang, run=rd.name, model=cfg.model.name, kind=text(f"compare.kind.{kind}", lang),
                rows=len(validation_prompts(rd)), votes=sum(r.get("kind", "vote") == "vote" for r in records),
                ratings=sum(r.get("kind") == "rating" for r in records))
    busy = _busy_line(is_busy, lang)
    return f"{busy}\n\n{line}" if busy else line


def _busy_line(is_busy: Callable[[], bool], lang: str) -> str:
    try:
        check_free(is_busy)
    except DeviceBusy as e:
        return _message(e, lang)
    return ""


def _message(e: BaseException, lang: str) -> str:
    """An exception as one line for the page: the engine's own polite sentence when it has one."""
    if isinstance(e, DeviceBusy):
        return "⏳ " + error_text(e, lang)
    if isinstance(e, StudioError):
        return "⚠️ " + error_text(e, lang)
    return "⚠️ " + text("compare.failed", lang, error=f"{type(e).__name__}: {e}")


def _model_name(which: str, lang: str) -> str:
    return text(f"compare.model.{which}", lang)


def generation_settings(max_new_tokens=128, temperature=0.0, seed=0) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or 128)),
                              temperature=max(0.0, float(temperature or 0.0)), seed=int(seed or 0))


# ---- the blind round ---------------------------------------------------------------------------------
# Everything these return before a vote goes to the page: answers labelled A and B, a status line, whether
# the judging buttons are on, and the round id (kept in a server-side gr.State). Never a side or a model.

def sample_prompt(run_dir: str | None, lang: str = "en") -> dict:
    """{"prompt": the last user turn, "sampled": the whole conversation up to the answer, "status"}."""
    try:
        rd = checked_run(run_dir, lang)
    except StudioError as e:
        return {"status": _message(e, lang)}
    row = sample_row(validation_prompts(rd))
    if row is None:
        return {"status": text("compare.no_validation", lang), "sampled": None}
    return {"prompt": row.prompt_text, "sampled": row.messages, "status": text("compare.sampled", lang)}


def _messages(prompt: str, sampled: list[dict] | None, lang: str):
    """The sampled conversation (with its system prompt and earlier turns) while the box still shows its
    question; the box's text otherwise."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise StudioError(text("compare.no_prompt", "en"), text("compare.no_prompt", "zh"))
    if sampled and sampled[-1].get("role") == "user" and str(sampled[-1].get("content", "")).strip() == prompt:
        return list(sampled)
    return prompt


def ask(run_dir: str | None, prompt: str, sampled: list[dict] | None = None, max_new_tokens=128, temperature=0.0,
        seed=0, lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """A new blind round: both answers streaming side by side. Yields {"round", "answer_a", "answer_b",
    "status", "vote_ready", "rate_ready", "reveal", "scores"}; the last update turns judging on."""
    fresh = {"round": None, "answer_a": "", "answer_b": "", "reveal": "", "vote_ready": False, "rate_ready": False,
             "scores": None}
    try:
        rd = checked_run(run_dir, lang)
        messages = _messages(prompt, sampled, lang)
        check_free(is_busy)
        yield {**fresh, "status": text("compare.loading", lang)}
        arena = get_arena(rd, is_busy=is_busy)
        public = arena.start(messages, generation_settings(max_new_tokens, temperature, seed))
        yield {"status": text("compare.generating", lang)}
        last = public
        for last in arena.stream(public["round_id"]):
            yield {"answer_a": last["answer_a"], "answer_b": last["answer_b"]}
        yield {"round": last["round_id"], "answer_a": last["answer_a"], "answer_b": last["answer_b"],
               "status": text("compare.judge_now", lang), "vote_ready": True, "rate_ready": True}
    except Exception as e:  # the page shows one line and stays usable
        yield {"status": _message(e, lang), "vote_ready": False, "rate_ready": False}


def reveal_text(result: dict, lang: str = "en") -> str:
    sides, choice = result["sides"], result["vote"]
    if choice in ("A", "B"):
        verdict = text("compare.verdict.win", lang, winner=_model_name(result["winner"], lang))
    else:
        verdict = text(f"compare.verdict.{choice}", lang)
    return text("compare.reveal", lang, a=_model_name(sides["A"], lang), b=_model_name(sides["B"], lang),
                verdict=verdict)


def vote(run_dir: str | None, round_id: str | None, choice: str, voter_id: str, lang: str = "en",
         is_busy: Callable[[], bool] = training_busy) -> dict:
    """Log the vote (Arena.vote writes votes.jsonl first), then reveal the sides and refresh the tally."""
    try:
        rd = checked_run(run_dir, lang)
        if not round_id:
            raise StudioError(text("compare.no_round", "en"), text("compare.no_round", "zh"))
        result = get_arena(rd, is_busy=is_busy).vote(round_id, choice, voter_id)
    except Exception as e:
        return {"reveal": _message(e, lang)}
    return {"reveal": reveal_text(result, lang), "vote_ready": False, "run_md": describe_run(str(rd), lang, is_busy),
            **tally_view(rd, voter_id, lang)}


def rate(run_dir: str | None, round_id: str | None, voter_id: str, rating_a, rating_b, lang: str = "en",
         is_busy: Callable[[], bool] = training_busy) -> dict:
    """Ratings mode: each answer scored 1-5 (Arena.rate writes it first), then the reveal."""
    try:
        rd = checked_run(run_dir, lang)
        if not round_id:
            raise StudioError(text("compare.no_round", "en"), text("compare.no_round", "zh"))
        result = get_arena(rd, is_busy=is_busy).rate(round_id, voter_id, rating_a, rating_b)
    except Exception as e:
        return {"reveal": _message(e, lang)}
    sides, ratings = result["sides"], result["ratings"]
    reveal = text("compare.reveal_rating", lang, a=_model_name(sides["A"], lang), b=_model_name(sides["B"], lang),
                  ra=ratings["A"], rb=ratings["B"])
    return {"reveal": reveal, "rate_ready": False, "run_md": describe_run(str(rd), lang, is_busy),
            **tally_view(rd, voter_id, lang)}


# ---- the tally ---------------------------------------------------------------------------------------

def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _tally_row(name: str, tl: Tally, lang: str) -> dict:
    low, high = tl.interval
    return {text("compare.col.voter", lang): name, text("compare.col.ft_wins", lang): tl.finetuned_wins,
            text("compare.col.base_wins", lang): tl.base_wins, text("compare.col.ties", lang): tl.ties,
            text("compare.col.both_bad", lang): tl.both_bad, text("compare.col.win_rate", lang): _pct(tl.win_rate),
            text("compare.col.ci", lang): f"{100 * low:.0f}-{100 * high:.0f}%" if tl.decided else "-"}


def _voter_label(voter: str, me: str, lang: str) -> str:
    return f"{voter} ({text('compare.you', lang)})" if voter == me else voter


def tally_view(run_dir: str | Path | None, voter_id: str = "", lang: str = "en") -> dict:
    """{"tally_md", "tally_plot", "tally_table", "ratings_md", "ratings_plot", "ratings_table"} for the run's
    votes.jsonl: win rate with its Wilson interval and sentence, overall and per voter; mean ratings."""
    records = votes_mod.read_records(Path(run_dir) / votes_mod.VOTES_FILE) if run_dir else []
    votes = [r for r in records if r.get("kind", "vote") == "vote"]
    overall, by_voter = tally(votes), tally_by_voter(votes)
    lines = [text("compare.overall", lang, sentence=overall.sentence(lang))]
    mine = by_voter.get(voter_id)
    lines.append(text("compare.yours", lang, voter=voter_id, sentence=mine.sentence(lang)) if mine
                 else text("compare.yours.none", lang, voter=voter_id or "-"))
    table = pd.DataFrame([_tally_row(text("compare.all_voters", lang), overall, lang)]
                         + [_tally_row(_voter_label(v, voter_id, lang), tl, lang) for v, tl in by_voter.items()])
    fig = None
    if votes:
        fig = report.tally_figure(votes, lang)
        fig.update_layout(title=None, margin=dict(t=20))  # its title is the sentence shown just above
        fig.update_xaxes(dtick=max(1, -(-overall.total // 10)))  # whole votes, not 0.2 of one
        for trace in fig.data:  # mark this session's own bar
            trace.y = [_voter_label(v, voter_id, lang) for v in trace.y]

    summary = rating_summary(records)
    rt = report.ratings_table(records)
    ratings = pd.DataFrame({
        text("compare.col.voter", lang): [text("compare.all_voters", lang) if v == "all" else _voter_label(v, voter_id, lang)
                                          for v in rt["voter"]],
        text("compare.col.model", lang): [_model_name(m, lang) for m in rt["model"]],
        text("compare.col.mean", lang): [f"{m:.2f}" for m in rt["mean"]],
        text("compare.col.ci", lang): [f"{lo:.1f}-{hi:.1f}" if pd.notna(lo) and n and n > 1 else "-"
                                       for lo, hi, n in zip(rt["ci_low"], rt["ci_high"], rt["n"])],
        text("compare.col.n", lang): [int(n) if pd.notna(n) else "" for n in rt["n"]],
    })
    return {"tally_md": "\n\n".join(lines), "tally_plot": fig, "tally_table": table,
            "ratings_md": summary.sentence(lang),
            "ratings_plot": _untitled(report.ratings_figure(records, lang)) if summary.n else None,
            "ratings_table": ratings if summary.n else None}


def _untitled(fig):
    fig.update_layout(title=None, margin=dict(t=20))  # its title is the sentence shown just above
    return fig


_VOTER_TOKEN = re.compile(r"[0-9a-f]{32}")


def voter_of(kept) -> tuple[str, str]:
    """(token, voter id) for a page load: the token this browser kept in its localStorage when it has one
    (so a reload stays the same voter), else a fresh random one; the id is the anonymous hash of it."""
    token = kept if isinstance(kept, str) and _VOTER_TOKEN.fullmatch(kept) else new_voter_token()
    return token, voter_id_for(token)


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


def servable(path: str, session: str) -> str:
    from studio.ui.data_tab import servable as serve

    return serve(path, session)


# ---- the data flywheel -------------------------------------------------------------------------------

def save_preferences(run_dir: str | None, lang: str = "en", session: str | None = None) -> dict:
    """Votes with a winner -> a preferences.jsonl (prompt, chosen, rejected). Reads votes.jsonl directly
    (what Arena.save_preferences does), so the model need not be loaded to save. From the page (a
    `session`), the file goes into that session's own folder under a fresh name, so what this person
    hands to training is not replaced by another voter's save; without one, RUN/data/preferences.jsonl."""
    try:
        rd = checked_run(run_dir, lang)
    except StudioError as e:
        return {"flywheel": _message(e, lang), "preferences": {}, "use_ready": False}
    if not votes_mod.preference_pairs(votes_mod.read_records(rd / votes_mod.VOTES_FILE)):
        return {"flywheel": text("compare.no_prefs", lang), "preferences": {}, "use_ready": False}
    out = _session_folder(session, "preferences", rd) / "preferences.jsonl" if session else None
    path, n = votes_mod.save_preference_pairs(rd, out)
    model = runs.load_run_config(rd).model.name
    return {"flywheel": text("compare.prefs_saved", lang, n=n, path=path, model=model),
            "preferences": {"train_file": str(path), "rows": n, "model": model}, "use_ready": True}


def use_for_dpo(preferences: dict | None, lang: str = "en") -> dict:
    """The hint the Train tab follows (ctx.data): this file, as preference data, so its stage turns to DPO."""
    if not preferences or not preferences.get("train_file"):
        return {"flywheel": text("compare.no_prefs", lang)}
    data = {"train_file": preferences["train_file"], "eval_file": "", "format": "preference",
            "rows": preferences.get("rows"), "source": "compare"}
    return {"data": data, "flywheel": text("compare.prefs_used", lang, path=preferences["train_file"],
                                           n=preferences.get("rows"))}


# ---- automatic checks --------------------------------------------------------------------------------

def progress_html(label: str = "", fraction: float | None = None) -> str:
    if fraction is None:
        return ""
    pct = max(0.0, min(1.0, fraction)) * 100
    return (f'<div class="compare-progress" data-pct="{pct:.0f}">'
            f'<progress max="100" value="{pct:.0f}" style="width:100%;height:14px"></progress>'
            f'<div style="font-size:0.9em">{html.escape(label)} · {pct:.0f}%</div></div>')


def _stage_label(event: dict, lang: str, n: int = 0) -> str:
    model = _model_name(event["model"], lang) if event.get("model") else ""
    return text(f"compare.stage.{event['stage']}", lang, model=model, n=n)


def _score_fraction(event: dict) -> float:
    # score_steps: per model, generation then perplexity, each over all rows.
    m = 0 if event.get("model") == "base" else 1
    s = 0 if event["stage"] == "generate" else 1
    total = max(1, event.get("total") or 1)
    return (m * 2 + s + min(event["done"], total) / total) / 4


def _fmt_metric(key: str, v) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    if key == "perplexity":
        return f"{v:.2f}"
    if key == "bleu":
        return f"{v:.1f}"
    return f"{100 * v:.1f}%"


def metrics_view(result: dict, lang: str = "en") -> dict:
    """{"scores_md", "metrics_plot", "metrics_table", "rows_table"} for eval.json's metrics part."""
    if not result or "base" not in result:
        return {"scores_md": "", "metrics_plot": None, "metrics_table": None, "rows_table": None}
    mt = report.metrics_table(result)
    table = pd.DataFrame({
        text("compare.col.metric", lang): [text(f"compare.metric.{k}", lang) for k in mt["metric"]],
        text("compare.col.base", lang): [_fmt_metric(k, v) for k, v in zip(mt["metric"], mt["base"])],
        text("compare.col.finetuned", lang): [_fmt_metric(k, v) for k, v in zip(mt["metric"], mt["finetuned"])],
        text("compare.col.change", lang): [("+" if isinstance(c, (int, float)) and c > 0 else "") + _fmt_metric(k, c)
                                           for k, c in zip(mt["metric"], mt["change"])],
    })
    rows = pd.DataFrame([{text("compare.col.prompt", lang): r.get("prompt"),
                          text("compare.col.reference", lang): r.get("reference"),
                          text("compare.col.base_answer", lang): r.get("base"),
                          text("compare.col.ft_answer", lang): r.get("finetuned"),
                          "ROUGE-L " + text("compare.col.base", lang): round(100 * (r.get("rouge_l_base") or 0), 1),
                          "ROUGE-L " + text("compare.col.finetuned", lang): round(100 * (r.get("rouge_l_finetuned") or 0), 1)}
                         for r in result.get("rows", [])])
    b, f = result["base"], result["finetuned"]
    md = text("compare.scored", lang, n=result.get("n", len(result.get("rows", []))),
              **{f"{short}_{w}": _fmt_metric(key, m.get(key)) for short, key in
                 (("em", "exact_match"), ("rl", "rouge_l"), ("bl", "bleu"), ("pp", "perplexity"))
                 for w, m in (("b", b), ("f", f))})
    return {"scores_md": md, "metrics_plot": report.metrics_figure(result, lang), "metrics_table": table,
            "rows_table": rows}


def consistency_view(result: dict, lang: str = "en") -> dict:
    if not result or not result.get("prompts"):
        return {"consistency_md": "", "consistency_plot": None, "consistency_table": None}
    ct = report.consistency_table(result)
    table = pd.DataFrame({
        text("compare.col.prompt", lang): ct["prompt"],
        text("compare.col.model", lang): [_model_name(m, lang) for m in ct["model"]],
        text("compare.col.agreement", lang): [f"{100 * v:.0f}%" for v in ct["mean_rouge_l"]],
        text("compare.col.identical", lang): [f"{100 * v:.0f}%" for v in ct["identical_pairs"]],
        text("compare.col.majority", lang): [f"{100 * v:.0f}%" for v in ct["majority_share"]],
        text("compare.col.answers", lang): ct["answers"],
    })
    md = text("compare.consistent", lang, prompts=len(result["prompts"]), n=result.get("n"),
              b=_pct(result["base"]["mean_rouge_l"]), f=_pct(result["finetuned"]["mean_rouge_l"]))
    return {"consistency_md": md, "consistency_plot": report.consistency_figure(result, lang),
            "consistency_table": table}


def edge_view(result: dict, lang: str = "en") -> dict:
    if not result or not result.get("items"):
        return {"edge_md": "", "edge_table": None}
    et = report.edge_case_table(result)
    table = pd.DataFrame({text("compare.col.prompt", lang): et["prompt"],
                          text("compare.col.base_answer", lang): et["base"],
                          text("compare.col.ft_answer", lang): et["finetuned"]})
    return {"edge_md": text("compare.edged", lang, n=len(et)), "edge_table": table}


def checks_view(run_dir: str | None, lang: str = "en") -> dict:
    """What eval.json already holds for the run, so results survive a refresh or a restart."""
    ev = {}
    if run_dir:
        try:
            ev = read_eval(checked_run(run_dir, lang))
        except StudioError:
            ev = {}
    return {**metrics_view(ev, lang), **consistency_view(ev.get("consistency") or {}, lang),
            **edge_view(ev.get("edge_cases") or {}, lang), "progress": "", "checks_status": "", "files": None}


def _prepare(run_dir, lang, is_busy):
    rd = checked_run(run_dir, lang)
    check_free(is_busy)
    return rd


def run_scores(run_dir: str | None, max_rows=100, max_new_tokens=128, lang: str = "en",
               is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """Exact match, ROUGE-L, BLEU and perplexity on the validation split, with progress; saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        data_file = validation_file(rd)
        if data_file is None:
            raise StudioError(text("compare.no_eval_data", "en"), text("compare.no_eval_data", "zh"))
        rows = load_rows(data_file, max(0, int(max_rows or 0)))
        yield {"checks_status": "", "progress": progress_html(text("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).pair
        settings = GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or 128)))
        result = None
        for event in score_steps(pair, rows, settings, batch_size=8, is_busy=is_busy):
            if event["stage"] == "done":
                result = event["result"]
                break
            yield {"progress": progress_html(_stage_label(event, lang), _score_fraction(event))}
        save_metrics(rd, result, str(data_file))
        yield {"progress": "", **metrics_view(result, lang)}
    except Exception as e:
        yield {"progress": "", "checks_status": _message(e, lang)}


def run_consistency(run_dir: str | None, times=5, n_prompts=5, max_new_tokens=128, temperature=0.0, seed=0,
                    lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """The first `n_prompts` validation prompts, each asked `times` times with sampling (the arena's
    temperature when it samples, else the engine's 0.7); saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        prompts = [r.messages for r in validation_prompts(rd)[:max(1, int(n_prompts or 1))]]
        if not prompts:
            raise StudioError(text("compare.no_eval_data", "en"), text("compare.no_eval_data", "zh"))
        times = max(2, int(times or 2))
        yield {"checks_status": "", "progress": progress_html(text("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).pair
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
        yield {"progress": "", "checks_status": _message(e, lang)}


def run_edge_cases(run_dir: str | None, prompts_text: str, max_new_tokens=128, temperature=0.0, seed=0,
                   lang: str = "en", is_busy: Callable[[], bool] = training_busy) -> Iterator[dict]:
    """The user's prompts, one a line, answered by both models with the arena's settings; saved to eval.json."""
    try:
        rd = _prepare(run_dir, lang, is_busy)
        prompts = [line.strip() for line in (prompts_text or "").splitlines() if line.strip()][:MAX_EDGE_CASES]
        if not prompts:
            raise StudioError(text("compare.no_edge", "en"), text("compare.no_edge", "zh"))
        yield {"checks_status": "", "progress": progress_html(text("compare.loading", lang), 0.0)}
        pair = get_arena(rd, is_busy=is_busy).pair
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
        yield {"progress": "", "checks_status": _message(e, lang)}


def _session_folder(session: str, kind: str, run_dir: Path) -> Path:
    """A new folder of this browser session's own for files written from run_dir (see studio.paths.session_dir)."""
    return paths.session_dir(session) / kind / f"{run_dir.name}-{time.time_ns()}"


def export(run_dir: str | None, lang: str = "en", session: str | None = None) -> dict:
    """Every table of the tab as CSV, offered as downloads: into a new folder of the session's own from the
    page (two people exporting at once never overwrite each other's files), else RUN/eval_export/."""
    try:
        rd = checked_run(run_dir, lang)
    except StudioError as e:
        return {"checks_status": _message(e, lang), "files": None}
    written = report.export_csv(rd, _session_folder(session, "compare-exports", rd) if session else None)
    if not written:
        return {"checks_status": text("compare.nothing_to_export", lang), "files": None}
    return {"checks_status": text("compare.exported", lang, n=len(written), dir=written[0].parent),
            "files": [str(p) for p in written]}


def open_run(run_dir: str | None, voter_id: str = "", lang: str = "en",
             is_busy: Callable[[], bool] = training_busy) -> dict:
    """Everything the tab shows for a run, and a clean slate for the next round."""
    return {"run_md": describe_run(run_dir, lang, is_busy), "round": None, "answer_a": "", "answer_b": "",
            "reveal": "", "status": "", "vote_ready": False, "rate_ready": False, "sampled": None,
            "flywheel": "", "preferences": {}, "use_ready": False, **tally_view(run_dir, voter_id, lang),
            **checks_view(run_dir, lang)}


def default_run(current: dict | None) -> str | None:
    """The run the Train tab picked, if it has a model; else the newest run that has one."""
    choices = [v for _, v in run_choices()]
    want = (current or {}).get("run_dir")
    if want:
        for v in choices:
            if Path(v).resolve() == Path(want).resolve():
                return v
    return choices[0] if choices else None


# ---- the layout ---------------------------------------------------------------------------------------

def build(ctx) -> dict:
    # A random token kept in the browser's localStorage, so that a reload is the same voter. The secret only
    # scrambles it there (Gradio sends it to the page): a fixed one keeps voters across server restarts.
    voter_token = gr.BrowserState(None, storage_key="studio-compare-voter", secret="studio-compare-voter")
    voter = gr.State("")  # the anonymous id derived from it (set by on_load); the server side only
    round_state = gr.State(None)  # the round id only; the sides stay in the Arena
    sampled = gr.State(None)  # the sampled validation conversation behind the prompt box
    preferences = gr.State({})

    run_dd = gr.Dropdown(choices=run_choices(), value=None, label=t("compare.run"), elem_id="compare-run")
    with gr.Row(equal_height=False):
        with gr.Column(scale=8):
            run_md = gr.Markdown(elem_id="compare-run-info")
        refresh_btn = gr.Button(t("compare.refresh"), scale=1, min_width=100, size="sm", elem_id="compare-refresh")

    with gr.Tabs():
        with gr.Tab(t("compare.tab.arena"), id="compare-arena"):
            gr.Markdown(t("compare.arena.intro"))
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    prompt = gr.Textbox(label=t("compare.prompt"), placeholder=t("compare.prompt.placeholder"), lines=3,
                                        max_lines=12, elem_id="compare-prompt")
                    with gr.Row():
                        sample_btn = gr.Button(t("compare.sample"), elem_id="compare-sample")
                        ask_btn = gr.Button(t("compare.ask"), variant="primary", elem_id="compare-ask")
                with gr.Column(scale=2):
                    with gr.Accordion(t("compare.settings"), open=True):
                        max_new_tokens = gr.Slider(16, 1024, 128, step=16, label=t("compare.max_new_tokens"),
                                                   info=t("compare.max_new_tokens.info"), elem_id="compare-max-tokens")
                        temperature = gr.Slider(0, 1.5, 0.0, step=0.05, label=t("compare.temperature"),
                                                info=t("compare.temperature.info"), elem_id="compare-temperature")
                        seed = gr.Number(0, label=t("compare.seed"), info=t("compare.seed.info"), precision=0,
                                         elem_id="compare-seed")
            status_md = gr.Markdown(elem_id="compare-status")
            with gr.Row(equal_height=True):
                answer_a = gr.Textbox(label=t("compare.answer_a"), lines=8, max_lines=24, interactive=False,
                                      buttons=["copy"], elem_id="compare-answer-a")
                answer_b = gr.Textbox(label=t("compare.answer_b"), lines=8, max_lines=24, interactive=False,
                                      buttons=["copy"], elem_id="compare-answer-b")
            mode = gr.Radio([(t("compare.mode.vote"), "vote"), (t("compare.mode.rate"), "rate")], value="vote",
                            label=t("compare.mode"), elem_id="compare-mode")
            with gr.Row(visible=True) as vote_row:
                vote_btns = {c: gr.Button(t(f"compare.vote.{c}"), interactive=False, elem_id=f"compare-vote-{c}")
                             for c in CHOICES}
            with gr.Row(visible=False, equal_height=True) as rate_row:
                score_a = gr.Radio(SCORES, label=t("compare.rate_a"), elem_id="compare-score-a")
                score_b = gr.Radio(SCORES, label=t("compare.rate_b"), elem_id="compare-score-b")
                rate_btn = gr.Button(t("compare.rate_submit"), interactive=False, elem_id="compare-rate")
            reveal_md = gr.Markdown(elem_id="compare-reveal")

            gr.Markdown(t("compare.tally.title"))
            gr.Markdown(t("compare.tally.info"), elem_classes="compare-note")
            tally_md = gr.Markdown(elem_id="compare-tally")
            tally_table = gr.Dataframe(interactive=False, show_label=False, elem_id="compare-tally-table")
            tally_plot = gr.Plot(show_label=False, visible=False, elem_id="compare-tally-plot")
            with gr.Accordion(t("compare.ratings.title"), open=False, elem_id="compare-ratings"):
                ratings_md = gr.Markdown()
                ratings_table = gr.Dataframe(interactive=False, show_label=False, visible=False)
                ratings_plot = gr.Plot(show_label=False, visible=False)

            gr.Markdown(t("compare.flywheel.title"))
            gr.Markdown(t("compare.flywheel.info"), elem_classes="compare-note")
            with gr.Row():
                save_btn = gr.Button(t("compare.save_prefs"), elem_id="compare-save-prefs")
                use_btn = gr.Button(t("compare.use_prefs"), interactive=False, elem_id="compare-use-prefs")
            flywheel_md = gr.Markdown(elem_id="compare-flywheel")

        with gr.Tab(t("compare.tab.checks"), id="compare-checks"):
            gr.Markdown(t("compare.checks.intro"))
            progress = gr.HTML(visible=False, elem_id="compare-progress")
            checks_status = gr.Markdown(elem_id="compare-checks-status")

            gr.Markdown(t("compare.scores.title"))
            gr.Markdown(t("compare.scores.info"), elem_classes="compare-note")
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=240):
                    max_rows = gr.Number(100, label=t("compare.max_rows"), precision=0, minimum=0,
                                         elem_id="compare-max-rows")
                    score_btn = gr.Button(t("compare.score"), variant="primary", elem_id="compare-score")
                with gr.Column(scale=3):
                    scores_md = gr.Markdown(elem_id="compare-scores")
                    metrics_table = gr.Dataframe(interactive=False, show_label=False, visible=False,
                                                 elem_id="compare-metrics-table")
            metrics_plot = gr.Plot(show_label=False, visible=False, elem_id="compare-metrics-plot")
            with gr.Accordion(t("compare.rows_detail"), open=False):
                rows_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False, visible=False)

            gr.Markdown(t("compare.consistency.title"))
            gr.Markdown(t("compare.consistency.info"), elem_classes="compare-note")
            with gr.Row(equal_height=True):
                times = gr.Slider(2, 10, 5, step=1, label=t("compare.times"), scale=2)
                n_prompts = gr.Number(5, label=t("compare.n_prompts"), precision=0, minimum=1, scale=1)
            consistency_btn = gr.Button(t("compare.consistency"), variant="primary", elem_id="compare-consistency")
            consistency_md = gr.Markdown(elem_id="compare-consistency-result")
            consistency_plot = gr.Plot(show_label=False, visible=False)
            consistency_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False,
                                             visible=False)

            gr.Markdown(t("compare.edge.title"))
            gr.Markdown(t("compare.edge.info"), elem_classes="compare-note")
            edge_prompts = gr.Textbox(label=t("compare.edge.prompts"), placeholder=t("compare.edge.placeholder"), lines=4,
                                      elem_id="compare-edge-prompts")
            edge_btn = gr.Button(t("compare.edge"), variant="primary", elem_id="compare-edge")
            edge_md = gr.Markdown(elem_id="compare-edge-result")
            edge_table = gr.Dataframe(interactive=False, wrap=True, max_height=400, show_label=False, visible=False)

            export_btn = gr.Button(t("compare.export"), elem_id="compare-export")
            files = gr.File(label=t("compare.files"), file_count="multiple", interactive=False, visible=False,
                            elem_id="compare-files")

    comps = {
        "run_md": run_md, "round": round_state, "sampled": sampled, "prompt": prompt, "status": status_md,
        "answer_a": answer_a, "answer_b": answer_b, "reveal": reveal_md, "scores": score_a,
        "tally_md": tally_md, "tally_plot": tally_plot, "tally_table": tally_table, "ratings_md": ratings_md,
        "ratings_plot": ratings_plot, "ratings_table": ratings_table, "flywheel": flywheel_md,
        "preferences": preferences, "data": ctx.data, "progress": progress, "checks_status": checks_status,
        "scores_md": scores_md, "metrics_plot": metrics_plot, "metrics_table": metrics_table, "rows_table": rows_table,
        "consistency_md": consistency_md, "consistency_plot": consistency_plot, "consistency_table": consistency_table,
        "edge_md": edge_md, "edge_table": edge_table, "files": files,
    }
    toggles = {"vote_ready": list(vote_btns.values()), "rate_ready": [rate_btn], "use_ready": [use_btn]}

    def outputs(*names) -> list:
        out = []
        for n in names:
            out += toggles.get(n) or [comps[n]]
        if "scores" in names:
            out.append(score_b)
        return out

    def ui(values: dict) -> dict:
        """A handler's named values -> {component: value}."""
        out = {}
        for name, v in values.items():
            if name in toggles:
                out.update({b: gr.Button(interactive=bool(v)) for b in toggles[name]})
            elif name == "scores":  # a new round clears both score radios
                out[score_a], out[score_b] = v, v
            elif name in SHOWN_WITH_VALUE:  # an empty chart or table is hidden, not drawn blank
                comp = comps[name]
                shown = v is not None and not (isinstance(v, str) and not v) and not (hasattr(v, "empty") and v.empty)
                out[comp] = type(comp)(value=v, visible=shown)
            elif name in comps:
                out[comps[name]] = v
        return out

    tally_names = ("tally_md", "tally_plot", "tally_table", "ratings_md", "ratings_plot", "ratings_table")
    check_names = ("scores_md", "metrics_plot", "metrics_table", "rows_table", "consistency_md", "consistency_plot",
                   "consistency_table", "edge_md", "edge_table", "progress", "checks_status", "files")
    open_names = ("run_md", "round", "answer_a", "answer_b", "reveal", "status", "vote_ready", "rate_ready", "sampled",
                  "flywheel", "preferences", "use_ready", *tally_names, *check_names)

    # ---- choosing the run
    def on_load(kept=None, request: gr.Request = None):
        # No triggers, so this runs on page load only; every State is fresh then (ctx.run included).
        token, voter_id = voter_of(kept)
        value = default_run(None)
        return {voter_token: token, voter: voter_id, run_dd: gr.Dropdown(choices=run_choices(), value=value),
                **ui(open_run(value, voter_id, lang_of(request)))}

    gr.on(None, on_load, [voter_token], [voter_token, voter, run_dd, *outputs(*open_names)], show_progress="hidden")

    def on_run(value, voter_id, request: gr.Request):
        return ui(open_run(value, voter_id, lang_of(request)))

    run_dd.input(on_run, [run_dd, voter], outputs(*open_names), show_progress="hidden")

    def on_ctx_run(current, value, voter_id, request: gr.Request):
        """The Train tab opened or finished a run: follow it here once it has a model."""
        want = (current or {}).get("run_dir")
        if not (want and has_model(want)):
            return {run_dd: gr.Dropdown(choices=run_choices(), value=value)}
        want = default_run(current)
        out = {run_dd: gr.Dropdown(choices=run_choices(), value=want)}
        if want != value:
            out.update(ui(open_run(want, voter_id, lang_of(request))))
        return out

    ctx.run.change(on_ctx_run, [ctx.run, run_dd, voter], [run_dd, *outputs(*open_names)], show_progress="hidden")

    def on_refresh(value, voter_id, request: gr.Request):
        lang = lang_of(request)
        return {run_dd: gr.Dropdown(choices=run_choices(), value=value), run_md: describe_run(value, lang),
                **ui(tally_view(value, voter_id, lang))}

    refresh_btn.click(on_refresh, [run_dd, voter], [run_dd, run_md, *outputs(*tally_names)], show_progress="hidden")

    # ---- the blind round
    def on_sample(value, request: gr.Request):
        return ui(sample_prompt(value, lang_of(request)))

    sample_btn.click(on_sample, run_dd, outputs("prompt", "sampled", "status"), show_progress="hidden")

    def on_ask(value, text_, conv, tokens, temp, seed_, request: gr.Request):
        for update in ask(value, text_, conv, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    round_outputs = outputs("round", "answer_a", "answer_b", "status", "reveal", "vote_ready", "rate_ready", "scores")
    gr.on([ask_btn.click, prompt.submit], on_ask, [run_dd, prompt, sampled, max_new_tokens, temperature, seed],
          round_outputs, show_progress="hidden", api_name="compare_ask")

    def make_vote(choice):
        def on_vote(value, rid, voter_id, request: gr.Request):
            return ui(vote(value, rid, choice, voter_id, lang_of(request)))
        return on_vote

    for choice, btn in vote_btns.items():
        btn.click(make_vote(choice), [run_dd, round_state, voter], outputs("reveal", "vote_ready", "run_md", *tally_names),
                  show_progress="hidden", api_name=f"compare_vote_{choice}")

    def on_rate(value, rid, voter_id, a, b, request: gr.Request):
        return ui(rate(value, rid, voter_id, a, b, lang_of(request)))

    rate_btn.click(on_rate, [run_dd, round_state, voter, score_a, score_b],
                   outputs("reveal", "rate_ready", "run_md", *tally_names), show_progress="hidden", api_name="compare_rate")

    def on_mode(m):
        return {vote_row: gr.Row(visible=m == "vote"), rate_row: gr.Row(visible=m == "rate")}

    mode.change(on_mode, mode, [vote_row, rate_row], show_progress="hidden")

    # ---- the data flywheel
    def on_save(value, request: gr.Request):
        return ui(save_preferences(value, lang_of(request), _session(request)))

    save_btn.click(on_save, run_dd, outputs("flywheel", "preferences", "use_ready"))

    def on_use(prefs, request: gr.Request):
        return ui(use_for_dpo(prefs, lang_of(request)))

    use_btn.click(on_use, preferences, outputs("flywheel", "data"))

    # ---- automatic checks: one at a time per server (each is long, and holds the device batch by batch)
    def on_scores(value, rows_, tokens, request: gr.Request):
        for update in run_scores(value, rows_, tokens, lang_of(request)):
            yield ui(update)

    score_btn.click(on_scores, [run_dd, max_rows, max_new_tokens],
                    outputs("progress", "checks_status", "scores_md", "metrics_plot", "metrics_table", "rows_table"),
                    show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_consistency(value, n, k, tokens, temp, seed_, request: gr.Request):
        for update in run_consistency(value, n, k, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    consistency_btn.click(on_consistency, [run_dd, times, n_prompts, max_new_tokens, temperature, seed],
                          outputs("progress", "checks_status", "consistency_md", "consistency_plot", "consistency_table"),
                          show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_edge(value, lines, tokens, temp, seed_, request: gr.Request):
        for update in run_edge_cases(value, lines, tokens, temp, seed_, lang_of(request)):
            yield ui(update)

    edge_btn.click(on_edge, [run_dd, edge_prompts, max_new_tokens, temperature, seed],
                   outputs("progress", "checks_status", "edge_md", "edge_table"),
                   show_progress="hidden", concurrency_limit=1, concurrency_id="compare-checks")

    def on_export(value, request: gr.Request):
        session = _session(request)
        out = export(value, lang_of(request), session)
        if out.get("files"):  # served from a temp folder of this session's (gradio serves no other folder)
            out["files"] = [servable(f, session) for f in out["files"]]
        return ui(out)

    export_btn.click(on_export, run_dd, outputs("checks_status", "files"))

    return {"run": run_dd, "prompt": prompt, "ask": ask_btn, "answer_a": answer_a, "answer_b": answer_b,
            "votes": vote_btns, "reveal": reveal_md, "tally": tally_md, "voter": voter, "voter_token": voter_token,
            "round": round_state}
