"""The training job: one at a time per process, in a background thread, observable and stoppable.

    job = Job(cfg)              # or Job.resume(run_dir)
    job.start()                 # returns at once; raises StudioError if another job is running
    job.snapshot()              # state, progress, metrics so far, messages: what the UI polls
    job.stop()                  # saves where it is; Job.resume(run_dir) continues at the same step
    job.wait()

States: idle -> preparing -> training -> saving -> completed | stopped | failed.
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from studio import run_files
from studio.config import RunConfig
from studio.device_arbiter import ARBITER
from studio.engine import runs
from studio.engine.best import best_eval
from studio.engine.metrics import MetricsLog
from studio.errors import StudioError, from_os_error
from studio.files import atomic_write_json, read_jsonl, write_jsonl
from studio.messages import Msg
from studio.units import Seconds

STATES = ("idle", "preparing", "training", "saving", "completed", "stopped", "failed")
FINAL_STATES = ("completed", "stopped", "failed")

_current: "Job | None" = None
_current_lock = threading.Lock()


def current_job() -> "Job | None":
    """The running job, or the last one this process ran (the UI re-attaches to it after a refresh)."""
    return _current


def is_busy() -> bool:
    """True while a training run holds the device (studio.device_arbiter: the Compare tab waits)."""
    return ARBITER.training_busy()


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class Job:
    def __init__(self, cfg: RunConfig, run_dir: str | Path | None = None, output_dir: str | Path | None = None,
                 resume_from: str | Path | None = None):
        self.cfg = cfg
        self.output_dir = output_dir
        self.run_dir: Path | None = Path(run_dir) if run_dir else None
        self.resume_from: Path | None = Path(resume_from) if resume_from else None
        self.state = "idle"
        self.error: str | None = None  # why it failed, one plain sentence in English (summary.json "error") ...
        self.error_message: Msg | None = None  # ... and as a message, shown in the reader's language
        self.log: list[str] = []  # "HH:MM:SS line", in English (the CLI prints these)
        self.log_messages: list[dict] = []  # the same lines as {"time", "message"}: messages.text_of shows them
        self.metrics = MetricsLog()
        self.step = 0
        self.total_steps = 0
        self.epoch = 0.0
        self.started_at: float | None = None
        self.earlier_s = 0.0  # training time of the run before this resume: the elapsed time counts the whole run
        self.finished_at: float | None = None
        self.trainable_params = 0
        self.total_params = 0
        self.tokens_per_step = 0
        self.placement = None
        self.estimate_bytes: int | None = None  # what the estimator says the device needs in all
        self.estimate_allocated_bytes: int | None = None  # its tensor share, comparable to cuda max_memory_allocated
        self.gradient_checkpointing = False
        self.time_limit_s: float | None = None  # set on a public Space: training stops (and saves) after it
        self._stop_requested = threading.Event()
        self._nonfinite = False
        self._last_logged_step = 0
        self._first_step_at: float | None = None
        self._last_step_at: float | None = None
        self._last_substep_at: float | None = None  # the end of the last gradient-accumulation micro-batch
        self._first_step = 0
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path) -> "Job":
        """Continue a stopped or crashed run from its last checkpoint, on the data it trained on."""
        run_dir = Path(run_dir)
        cfg = runs.load_run_config(run_dir)
        ck = runs.last_checkpoint(run_dir)
        if ck is None:
            raise StudioError("engine.no_checkpoint", run=run_dir.name)
        if _is_main_process():  # folders cut short by a kill while saving: the next saves write there again
            for p in run_files.checkpoints(run_dir).glob(run_files.CHECKPOINT_PREFIX + "*"):
                if p.is_dir() and runs.checkpoint_step(p) is None:
                    shutil.rmtree(p, ignore_errors=True)
        job = cls(cfg, run_dir=run_dir, resume_from=ck)
        job.earlier_s = float(runs.read_summary(run_dir).get("duration_s") or 0.0)
        return job

    # ---- control ---------------------------------------------------------------------------
    def start(self) -> "Job":
        global _current
        with _current_lock:
            if is_busy():
                raise StudioError(already_training())
            from studio.space import apply_limits
            from studio.policy import safe_mode

            for note in apply_limits(self.cfg):  # a public Space caps rows, length, model size and time
                self._say(note)
            self.time_limit_s = safe_mode().max_train_seconds or None
            problems = self.cfg.validate()
            if problems:
                raise StudioError(Msg("engine.config_problems", problems=_Paragraph(problems)))
            # The one claim on the device, decided atomically against the Compare tab's generations
            # (studio.device_arbiter); those free the models they loaded when it succeeds.
            ARBITER.claim_training(self)
            self.state = "preparing"
            self.started_at = time.time()
            _current = self
            self._thread = threading.Thread(target=self._run, name="studio-train", daemon=True)
            try:
                self._thread.start()
            except BaseException:
                ARBITER.release_training(self)
                raise
        return self

    def stop(self) -> Msg:
        """Ask the run to stop at the end of the step (or gradient-accumulation micro-batch) under way,
        after saving a checkpoint there. Returns what is happening, for whoever asked."""
        first = not self._stop_requested.is_set()
        self._stop_requested.set()
        said = self.stop_progress()
        if first:
            self._say(said)
        return said

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set() and not self.done

    def stop_progress(self) -> Msg:
        """Where a stop stands: the step being finished and about how long it takes, then the save."""
        if self.state != "training" or not self.total_steps:
            return Msg("engine.stop.soon")
        step_s = self.seconds_per_step()
        left = None
        if step_s is not None and self._last_step_at:  # a stop waits for the micro-batch under way only
            batch_s = step_s / max(1, self.cfg.training.grad_accum)
            since = time.time() - max(self._last_step_at, self._last_substep_at or 0.0)
            left = max(1.0, batch_s - since)
        return Msg("engine.stop.finishing", step=min(self.step + 1, self.total_steps), total=self.total_steps,
                   about=Msg("engine.stop.about", eta=Seconds(left)) if left else "")

    def seconds_per_step(self) -> float | None:
        if not self._first_step_at or self.step <= self._first_step:
            return None
        end = self._last_step_at or time.time()
        return (end - self._first_step_at) / (self.step - self._first_step)

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # ---- observation -----------------------------------------------------------------------
    def snapshot(self, since: int = 0) -> dict:
        now = time.time()
        elapsed = self.earlier_s + ((self.finished_at or now) - self.started_at if self.started_at else 0.0)
        eta = None
        if self.state == "training" and self._first_step_at and self.step > self._first_step and self.total_steps:
            rate = (now - self._first_step_at) / (self.step - self._first_step)
            eta = max(0.0, rate * (self.total_steps - self.step))
        return {
            "state": self.state, "step": self.step, "total_steps": self.total_steps,
            **runs.progress_shown(self.epoch, self.cfg.training.epochs, self.cfg.training.max_steps),
            "stopping": self.stopping, "stop_message": _stored(self.stop_progress()) if self.stopping else None,
            "elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1),
            "run_dir": str(self.run_dir) if self.run_dir else None, "error": self.error,
            "error_message": _stored(self.error_message),
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "log": list(self.log[-200:]), "log_messages": list(self.log_messages[-200:]),
            "metrics": self.metrics.snapshot(since),
            "device": self.placement.device if self.placement else None,
            "precision": self.placement.precision if self.placement else None,
        }

    # ---- the thread ------------------------------------------------------------------------
    def _say(self, line: Any) -> None:
        """One log line: a Msg (or anything with .text(lang)), kept as English text and as the message."""
        stamp = time.strftime("%H:%M:%S")
        message = line if callable(getattr(line, "text", None)) else str(line)
        self.log_messages.append({"time": stamp, "message": _stored(message)})  # first: len(log) readers find it
        self.log.append(f"{stamp} {message.text('en') if not isinstance(message, str) else message}")

    def _run(self) -> None:
        trainer = None
        try:
            trainer = self._prepare()
            self.state = "training"
            result = trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
            if self._nonfinite:
                raise StudioError("engine.nonfinite_loss")
            self.state = "saving"
            self._save_final(trainer)
            self.state = "stopped" if self._stop_requested.is_set() else "completed"
            self._say(Msg("engine.log.stopped" if self.state == "stopped" else "engine.log.completed"))
            self._write_summary(train_loss=getattr(result, "training_loss", None))
        except BaseException as e:  # the process lives on, whatever happened in the run
            self.state = "failed"
            self.error_message = _explain(e, self)
            self.error = self.error_message.text("en")
            self._say(Msg("engine.log.failed", error=self.error_message))
            if not isinstance(e, StudioError) and os.environ.get("STUDIO_DEBUG"):
                traceback.print_exc()
        finally:
            # Out of memory or not, free the model, the trainer and the CUDA cache before the next job.
            trainer = None
            _free_memory()
            self.finished_at = time.time()
            if self.state == "failed":
                try:
                    self._write_summary()
                except Exception:
                    pass
            ARBITER.release_training(self)
            self._done.set()

    def _prepare(self):
        from studio.engine import device as devices
        from studio.engine.trainers import build_trainer

        cfg = self.cfg
        if self.run_dir is None:
            self.run_dir = _shared_run_dir(cfg, self.output_dir)
        self.metrics = MetricsLog(run_files.metrics(self.run_dir) if _is_main_process() else None)
        self._write_summary()  # "preparing", and who runs it: a kill from here on reads as interrupted
        self.placement = devices.choose(cfg.training.device, cfg.training.precision)
        self._say(self.placement.reason)
        train_rows, eval_rows = self._data()
        if self.resume_from is None and _is_main_process():
            cfg.save(run_files.config(self.run_dir), header=f"# Re-run with: studio train {run_files.config(self.run_dir)}\n")
        if self.resume_from is not None:
            state = _read_trainer_state(self.resume_from)
            self.metrics.drop_after(state.get("global_step", 0))
            self._say(Msg("engine.log.resuming", checkpoint=self.resume_from.name, step=state.get("global_step", 0)))
        return build_trainer(self, train_rows, eval_rows)

    def _data(self) -> tuple[list[dict], list[dict]]:
        """The rows to train on: on resume exactly those saved in the run folder; otherwise read, split
        and saved there, so the run folder always holds the exact data it trained on."""
        from studio.engine import datasets

        train_path, eval_path = run_files.train_data(self.run_dir), run_files.eval_data(self.run_dir)
        if self.resume_from is not None and train_path.is_file():
            return read_jsonl(train_path), read_jsonl(eval_path) if eval_path.is_file() else []
        d, t = self.cfg.data, self.cfg.training
        rows, fmt = datasets.load_rows(d.train_file)
        datasets.check_stage(fmt, t.stage, Path(d.train_file).name)
        if d.max_rows:
            rows = rows[: d.max_rows]
        if d.eval_file:
            ev, _ = datasets.load_rows(d.eval_file)
            train = rows
        else:
            train, ev = datasets.split(rows, d.eval_share, t.seed)
        if _is_main_process():
            write_jsonl(train_path, train)
            write_jsonl(eval_path, ev)
        self._say(Msg("engine.log.data", train=len(train), eval=len(ev)))
        return train, ev

    # ---- callbacks from StudioCallback ------------------------------------------------------
    def _on_train_begin(self, state, model) -> None:
        self.total_steps = int(state.max_steps or 0)
        self.step = int(state.global_step or 0)
        self._first_step, self._first_step_at = self.step, time.time()
        if model is not None and not self.trainable_params:
            self.trainable_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            self.total_params = sum(p.numel() for p in model.parameters())
        self._write_summary()
        self._say(Msg("engine.log.training", steps=self.total_steps - self.step, device=self.placement.device,
                      precision=self.placement.precision, trainable=self.trainable_params, total=self.total_params,
                      share=100 * self.trainable_params / max(1, self.total_params)))

    def _on_step(self, state) -> None:
        if int(state.global_step) != self.step:
            self._last_step_at = time.time()
        self.step = int(state.global_step)
        self.epoch = float(state.epoch or 0.0)

    # ---- results ---------------------------------------------------------------------------
    def _save_final(self, trainer) -> None:
        if not _is_main_process():
            return
        target = run_files.weights(self.run_dir, full=self.cfg.method.method == "full")
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        trainer.save_model(str(tmp))
        trainer.processing_class.save_pretrained(str(tmp))
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the run's config.yaml says it all
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():  # the previous good adapter stays until the new one is complete
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)

    def _write_summary(self, train_loss: float | None = None) -> None:
        if not _is_main_process() or self.run_dir is None:
            return
        events = self.metrics.snapshot()
        losses = [e["loss"] for e in events if "loss" in e]
        evals = [e["eval_loss"] for e in events if "eval_loss" in e]
        tps = [e["tokens_per_second"] for e in events if e.get("tokens_per_second")]
        peak = _peak_memory(events)
        kept = best_eval(events)  # the lowest validation loss and its step: the weights the run keeps
        end = self.finished_at or time.time()
        summary = {
            "status": self.state,
            "steps": self.step,
            "total_steps": self.total_steps,
            "epochs": round(self.epoch, 3),
            "duration_s": round(self.earlier_s + end - (self.started_at or end), 1),
            "train_loss": train_loss if train_loss is not None and math.isfinite(train_loss) else (losses[-1] if losses else None),
            "final_loss": losses[-1] if losses else None,
            "eval_loss": evals[-1] if evals else None,
            "best_step": kept[0] if kept else None,
            "best_eval_loss": kept[1] if kept else None,
            "final_adapter": self.cfg.training.final_adapter,
            "tokens_per_second": round(sum(tps) / len(tps), 2) if tps else None,
            "peak_memory_bytes": peak,
            "peak_memory_kind": "cuda_max_allocated" if self.placement and self.placement.device == "cuda" else "process_rss",
            "estimated_memory_bytes": self.estimate_bytes,
            "estimated_allocated_bytes": self.estimate_allocated_bytes,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "trainable_share": round(self.trainable_params / self.total_params, 6) if self.total_params else None,
            "world_size": _world_size(),
            "device": self.placement.device if self.placement else None,
            "precision": self.placement.precision if self.placement else None,
            "gradient_checkpointing": self.gradient_checkpointing,
            "stage": self.cfg.training.stage,
            "method": self.cfg.method.method,
            "model": self.cfg.model.name,
            "error": self.error,
            "error_message": _stored(self.error_message),
        }
        if self.state in runs.ACTIVE:
            summary.update(runs.process_id())
        atomic_write_json(run_files.summary(self.run_dir), summary)


# ---- helpers ------------------------------------------------------------------------------------

def _shared_run_dir(cfg: RunConfig, output_dir) -> Path:
    """Create the run folder on the main process; other processes of a distributed run get its path."""
    if _world_size() == 1:
        return runs.new_run_dir(cfg, output_dir)
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():  # the launcher set RANK/WORLD_SIZE/MASTER_ADDR; accelerate reuses this group
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    holder = [str(runs.new_run_dir(cfg, output_dir)) if _is_main_process() else None]
    dist.broadcast_object_list(holder, src=0)
    return Path(holder[0])


def _read_trainer_state(ck: Path) -> dict:
    import json

    try:
        return json.loads((ck / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return {}


def _peak_memory(events: list[dict]) -> int | None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return int(torch.cuda.max_memory_allocated())
    except Exception:
        pass
    mems = [e.get("memory_bytes", 0) for e in events]
    return max(mems) if mems else None


def _free_memory() -> None:
    """Give the run's memory back: Python's cycles (the trainer, its accelerator and the model refer to
    one another), the CUDA cache, and the C heap, whose freed pages glibc keeps for the process unless
    asked (without that, gigabytes stayed after a CPU run and the next run's plan saw less room)."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
    _trim_heap()


def _trim_heap() -> None:
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim this way
        pass


def _is_oom(e: BaseException) -> bool:
    import torch

    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def already_training() -> Msg:
    """The sentence for "one run at a time", with when the running one should end."""
    job = _current
    eta = job.snapshot()["eta_s"] if job is not None else None
    return Msg("train.busy", when=Msg("train.busy.eta", eta=Seconds(eta)) if eta else "")


class _Paragraph:
    """Sentences (a config's problems) as one message parameter, read in any language."""

    def __init__(self, sentences: list):
        self.sentences = list(sentences)

    def text(self, lang: str = "en") -> str:
        from studio.messages import join

        return join(self.sentences, lang)

    def __str__(self) -> str:
        return self.text()


def _stored(message: Any) -> Any:
    """A message as logs and summary.json keep it: a Msg as {"id", "params"}; a transitional sentence
    (from a file that has not moved to ids yet) as its English text."""
    if message is None or isinstance(message, str):
        return message
    if isinstance(message, Msg):
        return message.to_dict()
    return message.text("en")


def _explain(e: BaseException, job: Job) -> Any:
    """Why the run failed, as one plain message a person can act on (a Msg, or a StudioError's own)."""
    if isinstance(e, StudioError):
        return e.message
    if (disk := from_os_error(e)) is not None:
        return disk.message
    if _is_oom(e):
        return _oom_advice(job)
    if isinstance(e, KeyboardInterrupt):
        return Msg("engine.interrupted")
    first = str(e).splitlines()[0] if str(e) else ""
    return Msg("engine.unexpected", what=f"{type(e).__name__}: {first}" if first else type(e).__name__)


def _oom_advice(job: Job) -> Msg:
    """Advice after running out of memory: the memory estimator's own recommendations when it has some,
    else the usual remedies for these settings."""
    t = job.cfg.training
    tips: list = []
    try:
        from studio.engine.trainers import memory_recommendations

        tips = list(memory_recommendations(job.cfg)[:3])
    except Exception:
        pass
    if not tips:
        if t.batch_size > 1:
            tips.append(Msg("engine.oom.tip.batch", batch=max(1, t.batch_size // 2), accum=t.grad_accum * 2))
        tips.append(Msg("engine.oom.tip.checkpointing"))
        tips.append(Msg("engine.oom.tip.length", length=max(128, t.max_length // 2)))
        if job.cfg.method.method == "full":
            if t.optimizer == "adamw" and getattr(job.placement, "device", None) == "cuda":
                tips.append(Msg("engine.oom.tip.optimizer"))
            tips.append(Msg("engine.oom.tip.lora"))
    return Msg("engine.oom", tips=tips)
