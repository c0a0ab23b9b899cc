"""Try several models: a queue of run configs, kept on disk, trained one after another.

The queue is `<runs folder>/queue.json`: its entries (a config each, usually the same data and settings
on different models), whether it is running, and which process runs it. Being a file, it survives a page
reload and an app restart; `studio queue` shows and runs the same file.

    add(cfg, ["qwen2.5-0.5b-instruct", "smollm2-360m-instruct"])   # one waiting entry per model
    start()            # a thread in this process trains the entries one after another
    cancel(entry_id)   # a waiting entry is cancelled; the running one is stopped (its checkpoint kept)
    remove(entry_id)   # a waiting or finished entry leaves the list
    run_all()          # the same loop in the foreground (the CLI)

The engine trains one run at a time per process (studio.engine.job): the next entry starts when the
previous one ends, and waits while someone else's run holds the device. After a restart, an entry that
was running when the process died is resumed from its last checkpoint (started again when it has none).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from studio.config import RunConfig
from studio.device_arbiter import DeviceBusy
from studio.engine import runs
from studio.errors import StudioError
from studio.files import atomic_write_json
from studio.messages import Msg
from studio.paths import runs_dir

QUEUE_FILE = "queue.json"
WAITING, RUNNING = "waiting", "running"
FINISHED = ("completed", "stopped", "failed", "cancelled")
POLL_S = 1.0

_lock = threading.RLock()
_runner: threading.Thread | None = None
_jobs: dict[str, object] = {}  # entry id -> the Job this process runs for it


def path() -> Path:
    return runs_dir() / QUEUE_FILE


def _file_lock():
    from filelock import FileLock  # several processes (the app, `studio queue run`) may share the file

    path().parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path()) + ".lock", timeout=30)


def load() -> dict:
    """{"active": bool, "entries": [...], "runner": {pid, pid_started, host} or None}."""
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.setdefault("active", False)
    data["entries"] = [e for e in data.get("entries") or [] if isinstance(e, dict) and e.get("id")]
    data.setdefault("runner", None)
    return data


class _Edit:
    """Read, change and write queue.json under both locks: `with _Edit() as q: q["entries"].append(...)`."""

    def __enter__(self) -> dict:
        _lock.acquire()
        self._flock = _file_lock()
        self._flock.acquire()
        self.data = load()
        self.before = json.dumps(self.data, sort_keys=True)
        return self.data

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None and json.dumps(self.data, sort_keys=True) != self.before:  # pages poll its mtime
                atomic_write_json(path(), self.data)
        finally:
            self._flock.release()
            _lock.release()


def entries() -> list[dict]:
    return load()["entries"]


def model_label(name: str) -> str:
    return Path(str(name or "")).name or "?"


def add(cfg: RunConfig, models: list[str] | None = None) -> list[dict]:
    """One waiting entry per model: the config with its model name replaced (the config as it is when no
    model is named). Returns the new entries."""
    names = [m for m in (models or []) if str(m or "").strip()] or [cfg.model.name]
    new = []
    for name in names:
        one = RunConfig.from_dict(cfg.to_dict())
        one.model.name = str(name).strip()
        problems = one.validate()
        if problems:
            raise StudioError(Msg("queue.config_problems", model=model_label(name), problems=problems))
        new.append({"id": uuid.uuid4().hex[:8], "model": one.model.name, "label": model_label(one.model.name),
                    "config": one.to_dict(), "status": WAITING, "run_dir": None, "added": time.time(),
                    "finished": None, "resume": False})
    with _Edit() as q:
        q["entries"].extend(new)
    return new


def _find(q: dict, entry_id: str) -> dict:
    for e in q["entries"]:
        if e["id"] == entry_id:
            return e
    raise StudioError("queue.no_entry", id=str(entry_id))


def remove(entry_id: str) -> Msg:
    """Take a waiting or finished entry off the list (the running one is cancelled first: see cancel)."""
    with _Edit() as q:
        e = _find(q, entry_id)
        if e["status"] == RUNNING:
            raise StudioError("queue.remove_running", model=e["label"])
        q["entries"].remove(e)
    return Msg("queue.removed", model=e["label"])


def cancel(entry_id: str) -> Msg:
    """A waiting entry will not run; the running one is stopped (saved where it is, resumable)."""
    with _Edit() as q:
        e = _find(q, entry_id)
        if e["status"] in FINISHED:
            return Msg("queue.already_finished", model=e["label"])
        was = e["status"]
        e["status"], e["finished"] = "cancelled", time.time()
    job = _jobs.get(entry_id)
    if was == RUNNING and job is not None and not job.done:
        job.stop()
    return Msg("queue.cancelled", model=e["label"])


def clear_finished() -> int:
    with _Edit() as q:
        before = len(q["entries"])
        q["entries"] = [e for e in q["entries"] if e["status"] not in FINISHED]
        return before - len(q["entries"])


def pending(q: dict | None = None) -> list[dict]:
    q = q or load()
    return [e for e in q["entries"] if e["status"] in (WAITING, RUNNING)]


def runner_alive(q: dict | None = None) -> bool:
    """Is a queue runner working on this file: a thread of this process, or another live process?"""
    if _runner is not None and _runner.is_alive():
        return True
    owner = (q or load()).get("runner")
    return isinstance(owner, dict) and runs.owner_alive(owner)


# ---- running ------------------------------------------------------------------------------------------

def _recover(q: dict) -> None:
    """Entries left "running" by a process that is gone: resume their run from its last checkpoint, or
    start them again when there is none."""
    for e in q["entries"]:
        if e["status"] != RUNNING or e["id"] in _jobs:
            continue
        rd = e.get("run_dir")
        e["status"] = WAITING
        e["resume"] = bool(rd and Path(rd).is_dir() and runs.last_checkpoint(rd) is not None
                           and runs.run_status(rd) == "interrupted")
        if not e["resume"]:
            e["run_dir"] = None


def _claim(q: dict) -> dict | None:
    """Under the locks: mark the next waiting entry running and return it (None when there is none)."""
    nxt = next((e for e in q["entries"] if e["status"] == WAITING), None)
    if nxt is None:
        q["active"] = False
        return None
    nxt["status"] = RUNNING
    return nxt


def _start_job(entry: dict):
    from studio.engine.job import Job

    if entry.get("resume") and entry.get("run_dir"):
        job = Job.resume(entry["run_dir"])
    else:
        job = Job(RunConfig.from_dict(entry["config"]))  # names its run folder as it prepares
    job.start()
    return job


def step(on_event: Callable[[Msg], None] | None = None) -> bool:
    """Start the next waiting entry if the device is free. Returns True while the queue has work left
    (something running or waiting), False when it is done or was stopped."""
    from studio.engine.job import is_busy

    say = on_event or (lambda m: None)
    # the entry this process is running: wait for it, then record how it ended
    for entry_id, job in list(_jobs.items()):
        if not job.done:
            return True
        with _Edit() as q:
            try:
                e = _find(q, entry_id)
            except StudioError:
                e = None
            if e is not None and e["status"] == RUNNING:
                e["status"], e["finished"] = job.state, time.time()
            if e is not None:
                e["run_dir"] = str(job.run_dir) if job.run_dir else e.get("run_dir")
        _jobs.pop(entry_id, None)
        if e is not None:
            say(Msg("queue.finished", model=e["label"], status=Msg(f"train.state.{job.state}")))
    if is_busy():  # someone else's run: the next entry waits for the device
        return bool(pending())
    with _Edit() as q:
        if not q["active"]:
            return False
        q["runner"] = runs.process_id()
        entry = _claim(q)
        if entry is None:
            q["runner"] = None
            return False
    try:
        job = _start_job(entry)
    except StudioError as e:
        if isinstance(e, DeviceBusy) or getattr(e.message, "key", "") == "train.busy":  # taken meanwhile: retry
            with _Edit() as q:
                _find(q, entry["id"])["status"] = WAITING
            return True
        with _Edit() as q:
            got = _find(q, entry["id"])
            got["status"], got["finished"] = "failed", time.time()
            got["error"] = e.message.to_dict() if isinstance(e.message, Msg) else str(e)
        say(Msg("queue.failed_to_start", model=entry["label"], error=e.message))
        return True
    _jobs[entry["id"]] = job
    with _Edit() as q:
        got = _find(q, entry["id"])
        got["run_dir"], got["resume"] = str(job.run_dir) if job.run_dir else None, False
    say(Msg("queue.started", model=entry["label"]))
    return True


def _ensure_run_dir_recorded() -> None:
    """A Job names its run folder when it starts preparing: record it as soon as it is known."""
    for entry_id, job in list(_jobs.items()):
        if job.run_dir is None:
            continue
        with _Edit() as q:
            try:
                e = _find(q, entry_id)
            except StudioError:
                continue
            if not e.get("run_dir"):
                e["run_dir"] = str(job.run_dir)


def _loop(on_event=None) -> None:
    try:
        while step(on_event):
            _ensure_run_dir_recorded()
            time.sleep(POLL_S)
    finally:
        with _Edit() as q:
            if q.get("runner") and q["runner"].get("pid") == runs.process_id()["pid"]:
                q["runner"] = None


def start() -> Msg:
    """Run the waiting entries, one after another, in a thread of this process."""
    global _runner
    with _Edit() as q:
        if not pending(q):
            return Msg("queue.empty")
        if _runner is None or not _runner.is_alive():
            owner = q.get("runner")
            if isinstance(owner, dict) and runs.owner_alive(owner):
                return Msg("queue.run_elsewhere", pid=owner.get("pid"))
        _recover(q)
        q["active"] = True
    if _runner is None or not _runner.is_alive():
        _runner = threading.Thread(target=_loop, name="studio-queue", daemon=True)
        _runner.start()
    return Msg("queue.running", n=len(pending()))


def restart_if_active() -> bool:
    """When the app starts: a queue that was running when the last process ended goes on."""
    q = load()
    if q["active"] and pending(q) and not runner_alive(q):
        start()
        return True
    return False


def run_all(on_event: Callable[[Msg], None] | None = None) -> None:
    """The queue in the foreground, to its end (`studio queue run`)."""
    with _Edit() as q:
        owner = q.get("runner")
        if isinstance(owner, dict) and runs.owner_alive(owner):
            raise StudioError("queue.run_elsewhere", pid=owner.get("pid"))
        _recover(q)
        q["active"] = bool(pending(q))
    _loop(on_event)


def wait(timeout: float | None = None) -> bool:
    """Wait for this process's queue thread to finish (tests, the CLI)."""
    if _runner is None:
        return True
    _runner.join(timeout)
    return not _runner.is_alive()


def finished_runs(q: dict | None = None) -> list[str]:
    """The run folders of entries that ran, in the queue's order (what the comparison shows)."""
    return [e["run_dir"] for e in (q or load())["entries"]
            if e.get("run_dir") and e["status"] in FINISHED and Path(e["run_dir"]).is_dir()]
