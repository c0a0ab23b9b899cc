"""The Compare tab's blind round as plain functions over plain values: describe a run, sample a prompt, ask
both models (streamed), vote or rate, reveal, and turn winning answers into DPO data. No gradio here.

Blind by construction (FastChat's anonymous arena, without its globals): which model is A lives only in
the run's `Arena` (studio.evaluate.arena) on the server. Everything these return before a vote goes to
the page: answers labelled A and B, a status line, whether the judging buttons are on, and the round id.
Never a side or a model. A voter is the anonymous hash of a random token the browser keeps.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

from studio import run_files
from studio import paths
from studio.engine import runs
from studio.engine.job import is_busy as training_busy
from studio.errors import StudioError
from studio.evaluate import votes as votes_mod
from studio.evaluate.arena import get_arena, new_voter_token, voter_id_for
from studio.device_arbiter import DeviceBusy
from studio.evaluate.generate import GenerationSettings, check_free
from studio.evaluate.rows import EvalRow, load_rows, sample_row
from studio.evaluate.runs import checked_run, run_choices
from studio.evaluate.views import checks_view, message, model_name, tally_view
from studio.messages import say

_VOTER_TOKEN = re.compile(r"[0-9a-f]{32}")


def validation_file(run_dir: str | Path) -> Path | None:
    """The run's validation split, or its training data when it had none (what `validation_rows` reads)."""
    return run_files.validation_file(run_dir)


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
        return say("compare.no_runs", lang) if not run_choices() else say("compare.no_run", lang)
    try:
        rd = checked_run(run_dir)
        cfg = runs.load_run_config(rd)
    except StudioError as e:
        return message(e, lang)
    records = votes_mod.read_records(rd / votes_mod.VOTES_FILE)
    kind = "lora" if run_files.has_adapter(rd) else "full"
    line = say("compare.run_line", lang, run=rd.name, model=cfg.model.name, kind=say(f"compare.kind.{kind}", lang),
                rows=len(validation_prompts(rd)), votes=sum(r.get("kind", "vote") == "vote" for r in records),
                ratings=sum(r.get("kind") == "rating" for r in records))
    busy = _busy_line(is_busy, lang)
    return f"{busy}\n\n{line}" if busy else line


def _busy_line(is_busy: Callable[[], bool], lang: str) -> str:
    try:
        check_free(is_busy)
    except DeviceBusy as e:
        return message(e, lang)
    return ""


def generation_settings(max_new_tokens=128, temperature=0.0, seed=0) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or 128)),
                              temperature=max(0.0, float(temperature or 0.0)), seed=int(seed or 0))


def sample_prompt(run_dir: str | None, lang: str = "en") -> dict:
    """{"prompt": the last user turn, "sampled": the whole conversation up to the answer, "status"}."""
    try:
        rd = checked_run(run_dir)
    except StudioError as e:
        return {"status": message(e, lang)}
    row = sample_row(validation_prompts(rd))
    if row is None:
        return {"status": say("compare.no_validation", lang), "sampled": None}
    return {"prompt": row.prompt_text, "sampled": row.messages, "status": say("compare.sampled", lang)}


def _messages(prompt: str, sampled: list[dict] | None, lang: str):
    """The sampled conversation (with its system prompt and earlier turns) while the box still shows its
    question; the box's text otherwise."""
    prompt = (prompt or "").strip()
    if not prompt:
        raise StudioError("compare.no_prompt")
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
        rd = checked_run(run_dir)
        messages = _messages(prompt, sampled, lang)
        check_free(is_busy)
        yield {**fresh, "status": say("compare.loading", lang)}
        arena = get_arena(rd, is_busy=is_busy)
        public = arena.start(messages, generation_settings(max_new_tokens, temperature, seed))
        yield {"status": say("compare.generating", lang)}
        last = public
        for last in arena.stream(public["round_id"]):
            yield {"answer_a": last["answer_a"], "answer_b": last["answer_b"]}
        yield {"round": last["round_id"], "answer_a": last["answer_a"], "answer_b": last["answer_b"],
               "status": say("compare.judge_now", lang), "vote_ready": True, "rate_ready": True}
    except Exception as e:  # the page shows one line and stays usable
        yield {"status": message(e, lang), "vote_ready": False, "rate_ready": False}


def reveal_text(result: dict, lang: str = "en") -> str:
    sides, choice = result["sides"], result["vote"]
    if choice in ("A", "B"):
        verdict = say("compare.verdict.win", lang, winner=model_name(result["winner"], lang))
    else:
        verdict = say(f"compare.verdict.{choice}", lang)
    return say("compare.reveal", lang, a=model_name(sides["A"], lang), b=model_name(sides["B"], lang),
                verdict=verdict)


def vote(run_dir: str | None, round_id: str | None, choice: str, voter_id: str, lang: str = "en",
         is_busy: Callable[[], bool] = training_busy) -> dict:
    """Log the vote (Arena.vote writes votes.jsonl first), then reveal the sides and refresh the tally."""
    try:
        rd = checked_run(run_dir)
        if not round_id:
            raise StudioError("compare.no_round")
        result = get_arena(rd, is_busy=is_busy).vote(round_id, choice, voter_id)
    except Exception as e:
        return {"reveal": message(e, lang)}
    return {"reveal": reveal_text(result, lang), "vote_ready": False, "run_md": describe_run(str(rd), lang, is_busy),
            **tally_view(rd, voter_id, lang)}


def rate(run_dir: str | None, round_id: str | None, voter_id: str, rating_a, rating_b, lang: str = "en",
         is_busy: Callable[[], bool] = training_busy) -> dict:
    """Ratings mode: each answer scored 1-5 (Arena.rate writes it first), then the reveal."""
    try:
        rd = checked_run(run_dir)
        if not round_id:
            raise StudioError("compare.no_round")
        result = get_arena(rd, is_busy=is_busy).rate(round_id, voter_id, rating_a, rating_b)
    except Exception as e:
        return {"reveal": message(e, lang)}
    sides, ratings = result["sides"], result["ratings"]
    reveal = say("compare.reveal_rating", lang, a=model_name(sides["A"], lang), b=model_name(sides["B"], lang),
                  ra=ratings["A"], rb=ratings["B"])
    return {"reveal": reveal, "rate_ready": False, "run_md": describe_run(str(rd), lang, is_busy),
            **tally_view(rd, voter_id, lang)}


def voter_of(kept) -> tuple[str, str]:
    """(token, voter id) for a page load: the token this browser kept in its localStorage when it has one
    (so a reload stays the same voter), else a fresh random one; the id is the anonymous hash of it."""
    token = kept if isinstance(kept, str) and _VOTER_TOKEN.fullmatch(kept) else new_voter_token()
    return token, voter_id_for(token)


def _session_folder(session: str, kind: str, run_dir: Path) -> Path:
    """A new folder of this browser session's own for files written from run_dir (see studio.paths.session_dir)."""
    return paths.session_dir(session) / kind / f"{run_dir.name}-{time.time_ns()}"


def save_preferences(run_dir: str | None, lang: str = "en", session: str | None = None) -> dict:
    """Votes with a winner -> a preferences.jsonl (prompt, chosen, rejected). Reads votes.jsonl directly
    (what Arena.save_preferences does), so the model need not be loaded to save. From the page (a
    `session`), the file goes into that session's own folder under a fresh name, so what this person
    hands to training is not replaced by another voter's save; without one, RUN/data/preferences.jsonl."""
    try:
        rd = checked_run(run_dir)
    except StudioError as e:
        return {"flywheel": message(e, lang), "preferences": {}, "use_ready": False}
    if not votes_mod.preference_pairs(votes_mod.read_records(rd / votes_mod.VOTES_FILE)):
        return {"flywheel": say("compare.no_prefs", lang), "preferences": {}, "use_ready": False}
    out = _session_folder(session, "preferences", rd) / "preferences.jsonl" if session else None
    path, n = votes_mod.save_preference_pairs(rd, out)
    model = runs.load_run_config(rd).model.name
    return {"flywheel": say("compare.prefs_saved", lang, n=n, path=path, model=model),
            "preferences": {"train_file": str(path), "rows": n, "model": model}, "use_ready": True}


def use_for_dpo(preferences: dict | None, lang: str = "en") -> dict:
    """The hint the Train tab follows (ctx.data): this file, as preference data, so its stage turns to DPO."""
    if not preferences or not preferences.get("train_file"):
        return {"flywheel": say("compare.no_prefs", lang)}
    data = {"train_file": preferences["train_file"], "eval_file": "", "format": "preference",
            "rows": preferences.get("rows"), "source": "compare"}
    return {"data": data, "flywheel": say("compare.prefs_used", lang, path=preferences["train_file"],
                                           n=preferences.get("rows"))}


def open_run(run_dir: str | None, voter_id: str = "", lang: str = "en",
             is_busy: Callable[[], bool] = training_busy) -> dict:
    """Everything the tab shows for a run, and a clean slate for the next round."""
    return {"run_md": describe_run(run_dir, lang, is_busy), "round": None, "answer_a": "", "answer_b": "",
            "reveal": "", "status": "", "vote_ready": False, "rate_ready": False, "sampled": None,
            "flywheel": "", "preferences": {}, "use_ready": False, **tally_view(run_dir, voter_id, lang),
            **checks_view(run_dir, lang)}
