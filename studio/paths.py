"""Where the studio keeps its files: STUDIO_HOME (model cache, uploads, one folder per browser session)
and the runs folder; and `confine`, the one gate every path typed in the UI goes through.
(The atomic file writes once here live in studio.files; they are re-exported for older callers.)"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.parse
from pathlib import Path

from studio.errors import StudioError
from studio.policy import safe_mode

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESETS_DIR = REPO_ROOT / "presets"
ASSETS_DIR = REPO_ROOT / "assets"
SAMPLES_DIR = ASSETS_DIR / "samples"


def studio_home() -> Path:
    """STUDIO_HOME, or the user's cache dir (~/.cache/finetune-studio)."""
    env = os.environ.get("STUDIO_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "finetune-studio"


def runs_dir() -> Path:
    """STUDIO_RUNS_DIR, or ./runs beside where the studio was started."""
    return Path(os.environ.get("STUDIO_RUNS_DIR", "runs")).expanduser().resolve()


def session_dir(session: str | None) -> Path:
    """The folder for files the app writes on behalf of one browser session (gradio's session_hash):
    a copy of an upload, DPO pairs saved from votes, CSV exports. No other session writes or reads it,
    and no file there has a name another session could also pick."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", str(session or "")).strip("-")[:80] or "local"
    return studio_home() / "sessions" / name


def keep_upload(src: str | Path, session: str | None, kind: str = "uploads") -> Path:
    """A copy of an uploaded file in this session's folder, under a name no other upload shares
    (<session>/<kind>/<time>/<name>): what the app trains on stays put even if gradio's cache is cleared."""
    import shutil
    import time

    src = Path(src)
    name = re.sub(r"[^\w.-]+", "-", src.name).strip(".-") or "upload"
    folder = session_dir(session) / kind / f"{time.time_ns()}"
    folder.mkdir(parents=True, exist_ok=False)
    dest = folder / name
    shutil.copyfile(src, dest)
    return dest


def gradio_upload_dir() -> Path:
    """Where gradio puts uploaded files (its own rule: GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def app_roots() -> list[Path]:
    """The folders the app itself owns: its home (STUDIO_HOME), the runs folder, its bundled assets and
    presets, and gradio's upload folder. Not the whole temp folder: other programs keep files there."""
    roots = [studio_home(), runs_dir(), ASSETS_DIR, PRESETS_DIR, gradio_upload_dir()]
    return [r.expanduser().resolve() for r in roots]


def confine(path: str | Path, mode=None, roots: list[Path] | None = None) -> Path:
    """The one gate for a path a person typed or a browser sent (model folder, data file, run or output
    folder). On a workstation it only normalises (`~` expanded, made absolute, `..` and symlinks
    resolved). Where the deployment forbids server paths (a public Space: `safe_mode().allow_server_paths`
    is False) the resolved path must lie inside one of `app_roots()`, else a StudioError: symlinks and
    `..` are resolved before the check, so neither leads out, and a percent-encoded path is judged in
    its decoded form too."""
    if mode is None:
        mode = safe_mode()
    raw = str(path if path is not None else "")

    def refused() -> StudioError:
        return StudioError("paths.outside_app")

    def resolved(text: str) -> Path:
        if not text.strip() or "\x00" in text:
            raise refused() if not mode.allow_server_paths else StudioError("paths.unusable")
        try:
            return Path(text).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the OS refuses
            raise refused() if not mode.allow_server_paths else StudioError("paths.cannot_use", path=text) from None

    p = resolved(raw)
    if mode.allow_server_paths:
        return p
    allowed = roots if roots is not None else app_roots()
    allowed = [Path(r).expanduser().resolve() for r in allowed]
    candidates = [p]
    decoded = urllib.parse.unquote(raw)
    while decoded != raw:  # %2e%2e%2f and double encodings: judge what a later decode would name too
        candidates.append(resolved(decoded))
        raw, decoded = decoded, urllib.parse.unquote(decoded)
    for c in candidates:
        if not any(c == r or r in c.parents for r in allowed):
            raise refused()
    return p
