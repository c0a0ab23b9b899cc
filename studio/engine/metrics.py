"""Metrics through one narrow door: the trainer's callback writes events, everyone else reads snapshots.

`MetricsLog` is a thread-safe list of events mirrored to metrics.jsonl. `StudioCallback` turns the
trainer's log events into those events, measures throughput and memory, turns a stop request into
`control.should_training_stop`, and stops a run whose loss turned NaN or infinite.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

EVENT_KEYS = ("step", "epoch", "loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second",
              "memory_bytes", "time")


class MetricsLog:
    def __init__(self, path: str | Path | None = None):
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._path = Path(path) if path else None
        if self._path and self._path.is_file():  # a resumed run keeps its earlier curve
            from studio.engine.runs import read_metrics

            self._events = read_metrics(self._path.parent)

    def append(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)
            if self._path:
                # One line per event, flushed: a kill loses at most the line being written, which
                # readers skip.
                with open(self._path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(event) + "\n")

    def drop_after(self, step: int) -> None:
        """On resume, events logged after the checkpoint's step are about to be redone."""
        with self._lock:
            self._events = [e for e in self._events if e.get("step", 0) <= step]
            if self._path:
                from studio.files import atomic_write_text

                atomic_write_text(self._path, "".join(json.dumps(e) + "\n" for e in self._events))

    def snapshot(self, since: int = 0) -> list[dict]:
        with self._lock:
            return list(self._events[since:])

    def __len__(self) -> int:
        return len(self._events)


def _memory_bytes() -> int:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return int(torch.cuda.max_memory_allocated())
    except Exception:
        pass
    try:
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().rss)
    except Exception:
        return 0


class NonFiniteLoss(Exception):
    pass


class StudioCallback(TrainerCallback):
    """Bridges the HF Trainer and the Job: progress, metrics, stop requests, the NaN guard."""

    def __init__(self, job):
        self.job = job
        self._last_tokens = None
        self._last_time = None
        self._last_save = time.time()
        self.peak_rss = 0

    # --- progress ---------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kw):
        self.job._on_train_begin(state, kw.get("model"))
        self._last_time = self._last_save = time.time()

    def on_step_end(self, args, state, control, **kw):
        self.job._on_step(state)
        self.peak_rss = max(self.peak_rss, _memory_bytes())
        limit = self.job.time_limit_s
        if limit and self.job.started_at and time.time() - self.job.started_at > limit:
            self.job.stop()
        every = float(self.job.cfg.training.save_minutes or 0) * 60
        if every > 0 and time.time() - self._last_save > every:
            control.should_save = True  # a kill loses at most `save_minutes` of training
        if self.job._stop_requested.is_set():
            # Save where we are so a resume continues at this very step, then stop.
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_substep_end(self, args, state, control, **kw):
        # With gradient accumulation a step is several micro-batches: a stop need not wait for all of
        # them. The half-accumulated step is dropped; the checkpoint is the last whole step's.
        self.job._last_substep_at = time.time()
        if self.job._stop_requested.is_set():
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args, state, control, **kw):
        self._last_save = time.time()
        self.job._write_summary()  # the folder tells how far it got, should the process die now

    def on_epoch_end(self, args, state, control, **kw):
        self.job._on_step(state)

    # --- metrics ----------------------------------------------------------------------------
    def on_log(self, args, state, control, logs=None, **kw):
        logs = dict(logs or {})
        if not state.is_world_process_zero:
            return
        now = time.time()
        event = {"step": int(state.global_step), "epoch": round(float(state.epoch or 0), 4), "time": round(now, 3)}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm"):
            if key in logs and logs[key] is not None:
                event[key] = float(logs[key])
        if "train_loss" in logs:  # the trainer's closing summary line
            event["train_loss"] = float(logs["train_loss"])
        tokens = logs.get("num_tokens")
        if tokens is not None and "loss" in logs:
            event["num_tokens"] = int(tokens)
            if self._last_tokens is not None and now > self._last_time:
                event["tokens_per_second"] = round((tokens - self._last_tokens) / (now - self._last_time), 2)
            self._last_tokens, self._last_time = tokens, now
        elif "loss" in logs and self.job.tokens_per_step and now > self._last_time:
            steps = max(1, int(state.global_step) - self.job._last_logged_step)
            event["tokens_per_second"] = round(self.job.tokens_per_step * steps / (now - self._last_time), 2)
            self._last_time = now
        if "loss" in logs:
            self.job._last_logged_step = int(state.global_step)
        event["memory_bytes"] = _memory_bytes()
        self.peak_rss = max(self.peak_rss, event["memory_bytes"])
        for k in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins"):
            if k in logs:
                event[k.replace("/", "_")] = float(logs[k])
        if len(event) > 4:
            self.job.metrics.append(event)
        loss = event.get("loss")
        grad = event.get("grad_norm")
        if (loss is not None and not math.isfinite(loss)) or (grad is not None and not math.isfinite(grad)):
            self.job._nonfinite = True
            control.should_training_stop = True
        return control
