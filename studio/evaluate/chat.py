"""The Chat tab as plain functions over plain values: talk freely with a run's model, several turns,
streamed, with a system prompt, temperature and length; switch between the fine-tuned model and the base
(the same model in memory, its adapter off: ModelPair.use); stop an answer; keep a good conversation as a
training row. No gradio here.

The model is the one the Compare tab loads (`get_arena(run).loaded_pair()`): one copy in memory for both tabs. Each
answer holds the device (`device_turn`) while it streams; while a training run holds it, the message waits,
says so every few seconds, and goes as soon as training ends (or is dropped when the person presses Stop).

Stop is a flag per chat (a random id the page keeps), asked between tokens: the answer so far stays, and the
device is handed back at once, not when a cancelled generator is collected.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from studio import paths, run_files
from studio.device_arbiter import DeviceBusy
from studio.engine import runs
from studio.engine.job import is_busy as training_busy
from studio.errors import StudioError
from studio.evaluate.arena import get_arena
from studio.evaluate.generate import CUT_MARK, MODELS, GenerationSettings, device_turn, stream_answer
from studio.evaluate.runs import checked_run
from studio.evaluate.views import message, model_name
from studio.files import read_jsonl_tolerant
from studio.messages import say

KEPT_FOLDER = "chat"
KEPT_NAME = "kept.jsonl"
POLL_S = 2.0  # how often a waiting message looks whether training has ended
MAX_TURNS_CHARS = 24_000  # older turns are dropped beyond this much text: a long chat must not outgrow the model

_stops: dict[str, threading.Event] = {}
_stops_lock = threading.Lock()


# ---- stop ------------------------------------------------------------------------------------------
def _stop_event(chat_id: str) -> threading.Event:
    with _stops_lock:
        return _stops.setdefault(chat_id or "-", threading.Event())


def request_stop(chat_id: str) -> None:
    """Stop the answer this chat is waiting for or streaming, at the next token."""
    _stop_event(chat_id).set()


# ---- the conversation ------------------------------------------------------------------------------
def plain_text(content) -> str:
    """A chat message's content as text: a string, or the parts a chat component sends back."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("value") or "")
    if isinstance(content, (list, tuple)):
        return "".join(plain_text(c) for c in content)
    return "" if content is None else str(content)


def history_messages(history) -> list[dict]:
    """The page's conversation as [{"role", "content"}] with user and assistant turns only."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role in ("user", "assistant"):
            out.append({"role": role, "content": plain_text(content)})
    return out


def conversation(system: str, history: list[dict]) -> list[dict]:
    """What the model reads: the system prompt, then the turns (the oldest dropped when they grow too long)."""
    turns = [dict(m) for m in history]
    while len(turns) > 1 and sum(len(m["content"]) for m in turns) > MAX_TURNS_CHARS:
        turns = turns[2:] if len(turns) > 2 else turns[1:]
    system = (system or "").strip()
    return ([{"role": "system", "content": system}] if system else []) + turns


def settings_of(temperature=0.7, max_new_tokens=256, seed=0) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=max(1, int(max_new_tokens or 256)),
                              temperature=max(0.0, float(temperature or 0.0)), top_p=0.95 if temperature else 1.0,
                              seed=int(seed or 0))


def wait_for_device(is_busy: Callable[[], bool], should_stop: Callable[[], bool], poll_s: float = POLL_S,
                    sleep: Callable[[float], None] = time.sleep) -> Iterator[float]:
    """Seconds waited so far, once per poll, for as long as training holds the device (nothing when it is free)."""
    waited = 0.0
    while is_busy() and not should_stop():
        yield waited
        sleep(poll_s)
        waited += poll_s


# ---- the page's answers --------------------------------------------------------------------------
def describe(run_dir: str | None, lang: str = "en") -> str:
    """One line about the chosen run: which model answers, and whether the base can be switched to."""
    if not run_dir:
        return say("chat.no_run", lang)
    try:
        rd = checked_run(run_dir, "chat.no_run")
        cfg = runs.load_run_config(rd)
    except StudioError as e:
        return message(e, lang)
    kind = "lora" if run_files.has_adapter(rd) else "full"
    line = say(f"chat.run_line.{kind}", lang, run=rd.name, model=cfg.model.name)
    return f"{say('chat.busy_now', lang)}\n\n{line}" if training_busy() else line


def reply(run_dir: str | None, history, user_text: str, system: str = "", which: str = "finetuned",
          temperature=0.7, max_new_tokens=256, seed=0, chat_id: str = "", lang: str = "en",
          is_busy: Callable[[], bool] = training_busy, poll_s: float = POLL_S) -> Iterator[dict]:
    """One turn: the person's message, then the model's answer growing token by token. Yields
    {"chat": the conversation for the page, "input": the message box, "status": one line}."""
    stop = _stop_event(chat_id)
    stop.clear()
    turns = history_messages(history)
    try:
        rd = checked_run(run_dir, "chat.no_run")
        text = (user_text or "").strip()
        if not text:
            raise StudioError("chat.no_message")
        if which not in MODELS:
            which = "finetuned"
        turns.append({"role": "user", "content": text})
        yield {"chat": turns, "input": "", "status": ""}
        settings, t0 = settings_of(temperature, max_new_tokens, seed), time.time()
        answer = ""
        for _attempt in range(1000):  # training may take the device again between our wait and our turn
            for waited in wait_for_device(is_busy, stop.is_set, poll_s):
                yield {"status": "⏳ " + say("chat.waiting", lang, s=round(waited))}
            if stop.is_set():
                yield {"status": say("chat.stopped_waiting", lang)}
                return
            yield {"status": say("compare.loading", lang)}
            try:
                with device_turn(is_busy):
                    pair = get_arena(rd, is_busy=is_busy).loaded_pair()  # loaded on first use, within the turn
                    yield {"status": say("chat.answering", lang, model=model_name(which, lang))}
                    t0 = time.time()
                    for answer in stream_answer(pair, conversation(system, turns), which, settings, stop.is_set):
                        yield {"chat": turns + [{"role": "assistant", "content": answer}]}
                break
            except DeviceBusy:
                if not is_busy():
                    raise
        stopped = stop.is_set()
        key = "chat.stopped" if stopped else "chat.answered"
        yield {"chat": turns + [{"role": "assistant", "content": answer}],
               "status": say(key, lang, model=model_name(which, lang), s=time.time() - t0)}
    except Exception as e:
        yield {"chat": turns, "status": message(e, lang)}


def kept_file(session: str | None) -> Path:
    """The browser's own file of kept conversations (see studio.paths.session_dir)."""
    return paths.session_dir(session) / KEPT_FOLDER / KEPT_NAME


def keep(history, system: str = "", session: str | None = None, lang: str = "en") -> dict:
    """Append the conversation so far (system prompt, every turn, ending with the model's last answer) to
    the browser's kept.jsonl as one training row. Returns {"status", "kept": {file, rows} or None}."""
    turns = history_messages(history)
    if not turns or turns[-1]["role"] != "assistant" or not turns[-1]["content"].strip() \
            or not any(m["role"] == "user" for m in turns):
        return {"status": "⚠️ " + say("chat.nothing_to_keep", lang), "kept": None}
    for m in turns:  # a cut answer is kept as far as it went, without the mark that says it was cut
        if m["role"] == "assistant" and m["content"].endswith(CUT_MARK):
            m["content"] = m["content"][:-len(CUT_MARK)]
    row = {"messages": conversation(system, turns)}
    path = kept_file(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    n = len(read_jsonl_tolerant(path))
    return {"status": "✅ " + say("chat.kept", lang, n=n, path=str(path)), "kept": {"train_file": str(path), "rows": n}}


def use_kept(kept: dict | None, lang: str = "en") -> dict:
    """The hint the Data and Train tabs follow (ctx.data): the kept rows as chat (SFT) training data."""
    if not kept or not kept.get("train_file"):
        return {"status": "⚠️ " + say("chat.nothing_kept", lang)}
    data = {"train_file": kept["train_file"], "eval_file": "", "format": "sft", "rows": kept.get("rows"),
            "source": "chat"}
    return {"data": data, "status": "✅ " + say("chat.used", lang, n=kept.get("rows"), path=kept["train_file"])}
