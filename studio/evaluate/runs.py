"""Runs with a trained model (an adapter, or full weights): the ones the Compare and Export tabs offer, and
the one gate for a run folder named by a browser."""

from __future__ import annotations

from pathlib import Path

from studio import run_files
from studio import paths
from studio.engine import runs
from studio.errors import StudioError


def has_model(run_dir: str | Path) -> bool:
    return run_files.has_adapter(run_dir) or run_files.has_full_model(run_dir)


def is_full(run_dir: str | Path) -> bool:
    """A run without an adapter: it fine-tuned the whole model."""
    return not run_files.has_adapter(run_dir)


def run_choices() -> list[tuple[str, str]]:
    """Runs with a trained model, newest first, as (name, folder)."""
    return [(rd.name, str(rd)) for rd in runs.list_runs() if has_model(rd)]


def checked_run(run_dir: str | None, refusal: str = "compare.no_run") -> Path:
    """The run folder, if it is one the app lists: a value from the browser never names another folder.
    Otherwise StudioError(refusal)."""
    if run_dir:
        want = paths.confine(run_dir)  # the one gate for paths from the page; then: a listed run
        for rd in runs.list_runs():
            if rd.resolve() == want and has_model(rd):
                return rd
    raise StudioError(refusal)


def default_run(current: dict | None) -> str | None:
    """The run the Train tab picked (`current["run_dir"]`) when it has a model, else the newest one that has."""
    choices = [v for _, v in run_choices()]
    want = (current or {}).get("run_dir")
    if want:
        for v in choices:
            if Path(v).resolve() == Path(want).resolve():
                return v
    return choices[0] if choices else None


def followed_run(current: dict | None, shown: str | None) -> tuple[list, str | None, bool]:
    """A tab that picks a run follows the run the Train tab opened or finished, once it has a model:
    (the choices, the run to show, whether that differs from the one shown)."""
    want = (current or {}).get("run_dir")
    if not (want and has_model(want)):
        return run_choices(), shown, False
    want = default_run(current)
    return run_choices(), want, want != shown
