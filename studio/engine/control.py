"""Starting, stopping and resuming the server's one training run, for whoever asks (the Train tab, and
anything else that drives the engine without a browser). Each returns the sentence to show as a Msg
(read it with .text(lang))."""

from __future__ import annotations

from pathlib import Path

from studio import policy
from studio.config import RunConfig
from studio.engine import runs
from studio.engine.job import Job, already_training, current_job, is_busy
from studio.errors import StudioError
from studio.messages import Msg


def busy_message() -> Msg:
    return already_training()


def start(cfg: RunConfig) -> tuple[Msg, bool]:
    """Start a run from a config the browser built: its paths confined on a public Space, remote code
    only where the server allows it. (message, started)."""
    from studio import space

    if is_busy():
        return busy_message(), False
    try:
        Job(space.check_browser_config(cfg)).start()
    except StudioError as e:
        if is_busy():  # another session started one a moment ago
            return busy_message(), False
        return _message(e), False
    return Msg("train.started"), True


def stop() -> Msg:
    job = current_job()
    if job is None or not is_busy():
        return Msg("train.nothing_running")
    return job.stop()


def resume(run_dir: str | Path | None) -> tuple[Msg, bool]:
    """Resume the chosen past run, or else the last job if it stopped or failed, or else the newest run a
    kill interrupted. (message, started)."""
    if is_busy():
        return busy_message(), False
    if not run_dir:
        job = current_job()
        if job is not None and job.state in ("stopped", "failed") and job.run_dir:
            run_dir = str(job.run_dir)
        else:  # after a restart: the newest run that a kill interrupted
            run_dir = runs.newest_interrupted()
    if not run_dir:
        return Msg("train.nothing_to_resume"), False
    if runs.run_status(run_dir) == "completed":
        return Msg("train.cannot_resume", run=Path(run_dir).name, status=Msg("engine.status.completed")), False
    try:
        policy.check_remote_code(runs.load_run_config(run_dir))
        Job.resume(run_dir).start()
    except StudioError as e:
        if is_busy():
            return busy_message(), False
        return _message(e), False
    return Msg("train.resumed", run=Path(run_dir).name), True


def _message(e: StudioError):
    """A StudioError's own message: a Msg (or, from a file not yet moved to ids, a sentence with .text)."""
    return e.message
