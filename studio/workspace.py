"""One browser's work, kept on the server: the chosen data and model, the Data tab's file, mapping, edits and
cleaning, and the Train tab's settings. A reload, a language switch or opening the app the next day finds
it again (the browser keeps a random token in a cookie; studio/ui/workspace.py turns it into the id used
here and as the folder of that browser's files, studio.paths.session_dir).

    workspace.save(ws, train={"settings": ..., "base": ...})   # merge one part in, written atomically
    workspace.load(ws).get("train")                             # {} for a browser seen for the first time

Plain JSON, small (paths to files, not the rows), one file per browser.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from studio.files import atomic_write_json
from studio.paths import session_dir

FILE = "workspace.json"
_lock = threading.Lock()  # saves from one browser's events, read-merge-write one at a time


def path(ws: str) -> Path:
    return session_dir(ws) / FILE


def load(ws: str) -> dict:
    try:
        data = json.loads(path(ws).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(ws: str, **parts) -> None:
    """Merge `parts` into the workspace (a part given as None is forgotten)."""
    with _lock:
        data = load(ws)
        for key, value in parts.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        atomic_write_json(path(ws), data)
