"""Who may use the device now: the one arbiter that training and generation both ask.

A training run holds the device for its whole life; generations (the Compare tab, evaluation) take
turns on it, first come first served. Each claim is decided under one lock, so the two cannot both
hold it: a generation cannot slip in between training's "is anyone generating?" and its start, and a
training run cannot start between a generation's "is anyone training?" and its turn.

    ARBITER.claim_training(job)            # raises DeviceBusy while a generation holds or awaits a turn
    ARBITER.release_training(job)          # when the run has ended (completed, stopped, failed)
    with ARBITER.generation(timeout=600):  # raises DeviceBusy while a run trains, or when no turn came
        ...

Whoever frees memory for training (the Compare tab's loaded models) registers with `on_training_claim`,
so this module names none of its users: it sits below studio.engine and studio.evaluate alike.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from studio.errors import StudioError


class DeviceBusy(StudioError):
    """The device is taken (a training run, or a queue that did not move in time)."""


class FifoLock:
    """A ticket lock: waiters get the device in the order they asked. Not tied to a thread, because a
    streaming generator may be resumed by a different worker thread than the one that started it."""

    def __init__(self):
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()

    def acquire(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._wait_turn(self._take_ticket(), timeout)

    def _take_ticket(self) -> int:
        ticket = self._next
        self._next += 1
        return ticket

    def _wait_turn(self, ticket: int, timeout: float | None) -> bool:
        if not self._cond.wait_for(lambda: self._serving == ticket, timeout=timeout):
            self._abandoned.add(ticket)  # skipped when its turn comes
            return False
        return True

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()

    def queued(self) -> int:
        """Requests holding or waiting for the device."""
        with self._cond:
            return self._next - self._serving - len(self._abandoned)


class DeviceArbiter(FifoLock):
    """The FIFO queue of generations plus the training claim, decided under the queue's own lock."""

    def __init__(self):
        super().__init__()
        self._training: Any = None
        self._on_training_claim: list[Callable[[], None]] = []

    # ---- training ----------------------------------------------------------------------------
    def claim_training(self, holder: Any) -> None:
        """Take the device for a training run, or raise DeviceBusy. Atomic: no generation can take a
        turn between this check and the claim."""
        if holder is None:
            raise ValueError("a training claim needs a holder")
        with self._cond:
            if self._training is not None and self._training is not holder:
                raise DeviceBusy("engine.busy.training")
            if self.queued() > 0:
                raise DeviceBusy("engine.busy.generating")
            self._training = holder
        for free in list(self._on_training_claim):  # outside the lock: freeing memory may take a while
            try:
                free()
            except Exception:
                pass

    def release_training(self, holder: Any) -> None:
        with self._cond:
            if self._training is holder:
                self._training = None
                self._cond.notify_all()

    def training_holder(self) -> Any:
        return self._training

    def training_busy(self) -> bool:
        return self._training is not None

    def on_training_claim(self, free: Callable[[], None]) -> None:
        """Call `free` each time a training run takes the device (to give back memory held for generating)."""
        if free not in self._on_training_claim:
            self._on_training_claim.append(free)

    # ---- generation --------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> bool:
        """A generation's turn: DeviceBusy while a run trains; False when the turn did not come in time."""
        with self._cond:
            if self._training is not None:
                raise DeviceBusy("engine.busy.training")
            return self._wait_turn(self._take_ticket(), timeout)

    @contextmanager
    def generation(self, timeout: float | None = 600) -> Iterator[None]:
        if not self.acquire(timeout=timeout):
            raise DeviceBusy("engine.busy.queue")
        try:
            yield
        finally:
            self.release()


ARBITER = DeviceArbiter()
