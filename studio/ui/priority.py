"""Training first: the web server's event loop, where gradio queues events, streams updates and encodes
every reply, and the worker threads that run the handlers (studio/ui/guard.py), run at a lower CPU
priority (nice +10) than the training thread. On a machine whose cores
the trainer keeps busy, twenty open tabs then cost the run little, and the pages still update (they
get the time the trainer leaves, which on a CPU is never none: a step has its pauses).

Linux gives each thread its own nice value; elsewhere this does nothing."""

from __future__ import annotations

import os
import threading

UI_NICE = 10
_done: set[int] = set()


def lower_this_thread(nice: int = UI_NICE) -> None:
    tid = threading.get_native_id()
    if tid in _done:
        return
    _done.add(tid)
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))
    except (AttributeError, OSError):
        pass


class YieldToTraining:
    """ASGI middleware: lowers the priority of the thread that serves the requests (the event loop)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        lower_this_thread()
        return await self.app(scope, receive, send)


def training_note(lang: str = "en") -> str:
    """Why a step may take longer now: " · <a run is training and comes first>" while a run holds the device,
    else "". Appended to the progress text of the work a page waits for (reading, cleaning)."""
    from studio.device_arbiter import ARBITER
    from studio.ui.i18n import text

    return f" · {text('app.training_first', lang)}" if ARBITER.training_busy() else ""
