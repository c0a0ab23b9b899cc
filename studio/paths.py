"""Where the studio keeps its files: STUDIO_HOME (model cache, uploads, one folder per browser session)
and the runs folder; and `confine`, the one gate every path typed in the UI goes through."""

from __future__ import annotations

import json
import os
import re
import tempfile
import urllib.parse
from pathlib import Path

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
    from studio.errors import StudioError

    if mode is None:
        from studio.space import safe_mode

        mode = safe_mode()
    raw = str(path if path is not None else "")

    def refused() -> StudioError:
        return StudioError("That path is outside the app's own folders; anything else on the server is off limits on "
                           "this public Space. Upload the file instead, or choose the embedded model, a catalog model "
                           "or a Hugging Face Hub id.",
                           "这个路径不在应用自己的文件夹里；在这个公开的 Space 上，服务器上的其他位置都不能访问。"
                           "请改为上传文件，或选择内置模型、目录中的模型或 Hugging Face Hub id。")

    def resolved(text: str) -> Path:
        if not text.strip() or "\x00" in text:
            raise refused() if not mode.allow_server_paths else StudioError(
                "That is not a usable path.", "这不是一个可用的路径。")
        try:
            return Path(text).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the OS refuses
            raise refused() if not mode.allow_server_paths else StudioError(
                f"Cannot use the path {text}.", f"无法使用路径 {text}。") from None

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


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that a kill at any moment leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows) -> int:
    """Write rows as JSONL atomically; returns the number of rows."""
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return len(lines)


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
