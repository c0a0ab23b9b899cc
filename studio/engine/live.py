"""The live run as every open page follows it: a cheap key that moves when the run has something new,
one poll step per session that says what that session must redraw, and views built once per change of
the run and shared by every session. No gradio here: the Train tab renders, this decides.

One job per server (studio.engine.job). A page asks for `live_key()` every second (studio/ui/live.py
answers that route before gradio's routing) and fires its update event only when the key changed.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from studio.engine.job import FINAL_STATES, current_job


def live_key() -> str:
    """What changes when the live run has something new to show (a step, a log line, its state)."""
    job = current_job()
    if job is None:
        return ""
    return f"{id(job)}:{job.state}:{len(job.metrics)}:{len(job.log)}"


def _followed(view: dict | None):
    """The live job, unless the session has a past run open (or there is none)."""
    job = current_job()
    if job is None or ((view or {}).get("run_dir") and str(job.run_dir) != view["run_dir"]):
        return None
    return job


def poll(view: dict | None, seen: dict | None, ctx_run: dict | None = None, lang: str = "en") -> tuple[dict, dict]:
    """One tick of a session's poller: (what to send, the session's new `seen`).

    What to send: "snapshot" (the run's counts: redraw the progress bar, whose clock and ETA move),
    "live" (a key, when the curves, health or log changed: then `live_panel()` gives them), "state"
    (when the run's state changed: the buttons follow it), "history" (the history should be re-read)
    and "run" (the run Compare and Export should use). `view` is {"run_dir": path} while the person has
    a past run open (then nothing live is sent), else {}. `seen` remembers what this session was last
    sent, so a training step costs one update of the curves per session, and a finished run nothing.
    """
    seen = dict(seen or {})
    job = _followed(view)
    if job is None:
        return {}, seen
    snap = job.snapshot(since=len(job.metrics))  # the counts only: the curves are built once, in live_panel
    key = [id(job), snap["state"], len(job.metrics), len(snap["log"]), lang]
    final = snap["state"] in FINAL_STATES
    if seen.get("key") == key and final:
        return {}, seen
    out: dict = {"snapshot": snap}
    if seen.get("key") != key:
        out["live"] = key
    if seen.get("state") != [id(job), snap["state"]]:
        out["state"] = seen["state"] = [id(job), snap["state"]]
    if final and snap.get("run_dir") and seen.get("finished") != [id(job), snap["state"]]:
        # The run ended (or this page just opened on an ended run): the history gains its summary, and
        # it becomes the run Compare and Export use, if this session watched it or had none chosen.
        out["history"] = True
        if seen.get("watched") == id(job) or not (ctx_run or {}).get("run_dir"):
            out["run"] = {"run_dir": snap["run_dir"]}
        seen["finished"] = [id(job), snap["state"]]
    elif not final and seen.get("watched") != id(job):
        out["history"] = True  # the new run appears in the history
        seen["watched"] = id(job)
    seen["key"] = key
    return out, seen


_shared: dict[tuple, Any] = {}
_shared_lock = threading.Lock()


def shared(key: tuple, build: Callable[[], dict]) -> dict:
    """`build()`, computed once per key and handed to every session that asks (a copy each)."""
    with _shared_lock:
        hit = _shared.get(key)
    if hit is None:
        hit = build()
        with _shared_lock:
            if len(_shared) > 8:
                _shared.clear()
            _shared[key] = hit
    return dict(hit)


def live_panel(view: dict | None, render: Callable[[dict, Any, str], dict], lang: str = "en") -> dict | None:
    """`render(snapshot, cfg, lang)` of the live run, built once per change of the run and shared by every
    session (None while a past run is open, or before any run)."""
    job = _followed(view)
    if job is None:
        return None
    snap = job.snapshot()
    key = (id(job), snap["state"], len(snap["metrics"]), len(snap["log"]), lang)
    return shared(key, lambda: render(snap, job.cfg, lang))


def live_run_dir() -> tuple[str | None, str | None]:
    """(run folder, state) of the run this process is training now, else (None, None)."""
    job = current_job()
    if job is None or not job.run_dir or job.done:
        return None, None
    return str(job.run_dir), job.state
