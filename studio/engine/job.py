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

from studio.config import RunConfig
from studio.engine import runs
from studio.engine.metrics import MetricsLog
from studio.errors import Sentence, StudioError, from_os_error, joined
from studio.paths import atomic_write_json, read_jsonl, write_jsonl

STATES = ("idle", "preparing", "training", "saving", "completed", "stopped", "failed")
FINAL_STATES = ("completed", "stopped", "failed")

_current: "Job | None" = None
_current_lock = threading.Lock()


def current_job() -> "Job | None":
    """The running job, or the last one this process ran (the UI re-attaches to it after a refresh)."""
    return _current


def is_busy() -> bool:
    """True while a job holds the device (the Compare tab waits)."""
    job = _current
    return job is not None and job.state not in FINAL_STATES + ("idle",)


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
        self.error: str | None = None  # one plain sentence in English (summary.json "error") ...
        self.error_zh: str | None = None  # ... and the same in Chinese (summary.json "error_zh")
        self.log: list[str] = []
        self.log_zh: list[str] = []  # the same lines in Chinese, where a line has a translation
        self.metrics = MetricsLog()
        self.step = 0
        self.total_steps = 0
        self.epoch = 0.0
        self.started_at: float | None = None
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
            raise StudioError(f"The run {run_dir.name} has no checkpoint to resume from; start it again instead.",
                              f"训练 {run_dir.name} 没有可以继续的检查点；请重新开始训练。")
        if _is_main_process():  # folders cut short by a kill while saving: the next saves write there again
            for p in (run_dir / "checkpoints").glob("checkpoint-*"):
                if p.is_dir() and runs.checkpoint_step(p) is None:
                    shutil.rmtree(p, ignore_errors=True)
        return cls(cfg, run_dir=run_dir, resume_from=ck)

    # ---- control ---------------------------------------------------------------------------
    def start(self) -> "Job":
        global _current
        with _current_lock:
            if is_busy():
                other = _current
                eta = other.snapshot()["eta_s"] if other else None
                when = f" It should end in about {_human_seconds(eta)}." if eta else ""
                when_zh = f"预计大约 {_human_seconds(eta, 'zh')}后结束。" if eta else ""
                raise StudioError(f"A training run is already going on this server (one at a time).{when} "
                                  "You can watch it in the Train tab.",
                                  f"这台服务器上已经有一个训练在进行（一次只能跑一个）。{when_zh}"
                                  "你可以在训练页查看它。")
            from studio.space import apply_limits, safe_mode

            for note in apply_limits(self.cfg):  # a public Space caps rows, length, model size and time
                self._say(note)
            self.time_limit_s = safe_mode().max_train_seconds or None
            problems = self.cfg.validate()
            if problems:
                raise StudioError(joined(problems), joined(problems, "zh"))
            from studio.evaluate.generate import DEVICE_LOCK

            if DEVICE_LOCK.queued() > 0:
                raise StudioError("The Compare tab is generating answers right now; start training when it is done "
                                  "(one thing at a time on the device).",
                                  "对比页正在生成回答；请等它完成后再开始训练（设备一次只做一件事）。")
            self.state = "preparing"
            self.started_at = time.time()
            _current = self
        self._thread = threading.Thread(target=self._run, name="studio-train", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_requested.set()
        self._say("Stop requested: saving the adapter so far.", "已请求停止：正在保存目前训练好的适配器。")

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # ---- observation -----------------------------------------------------------------------
    def snapshot(self, since: int = 0) -> dict:
        now = time.time()
        elapsed = (self.finished_at or now) - self.started_at if self.started_at else 0.0
        eta = None
        if self.state == "training" and self._first_step_at and self.step > self._first_step and self.total_steps:
            rate = (now - self._first_step_at) / (self.step - self._first_step)
            eta = max(0.0, rate * (self.total_steps - self.step))
        return {
            "state": self.state, "step": self.step, "total_steps": self.total_steps,
            "epoch": round(self.epoch, 3), "epochs": self.cfg.training.epochs,
            "elapsed_s": round(elapsed, 1), "eta_s": None if eta is None else round(eta, 1),
            "run_dir": str(self.run_dir) if self.run_dir else None, "error": self.error, "error_zh": self.error_zh,
            "trainable_params": self.trainable_params, "total_params": self.total_params,
            "log": list(self.log[-200:]), "log_zh": list(self.log_zh[-200:]), "metrics": self.metrics.snapshot(since),
            "device": self.placement.device if self.placement else None,
            "precision": self.placement.precision if self.placement else None,
        }

    # ---- the thread ------------------------------------------------------------------------
    def _say(self, line: str, zh: str | None = None) -> None:
        """One log line, in English and (given as `zh`, or carried by a Sentence) in Chinese."""
        stamp = time.strftime("%H:%M:%S ")
        en = line.en if isinstance(line, Sentence) else str(line)
        zh = zh or (line.zh if isinstance(line, Sentence) else en)
        self.log_zh.append(stamp + zh)  # first: a reader of len(log) finds log_zh as long
        self.log.append(stamp + en)

    def _run(self) -> None:
        trainer = None
        try:
            trainer = self._prepare()
            self.state = "training"
            result = trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
            if self._nonfinite:
                raise StudioError("The loss became NaN or infinite, so training stopped: the learning rate is likely "
                                  "too high. Lower it (for example by 10x) and start again.",
                                  "损失变成了 NaN 或无穷大，训练已停止：学习率很可能太高了。请把它调低"
                                  "（例如降到十分之一）后重新开始。")
            self.state = "saving"
            self._save_final(trainer)
            self.state = "stopped" if self._stop_requested.is_set() else "completed"
            if self.state == "stopped":
                self._say("Stopped; the adapter so far is saved. Resume continues from here.",
                          "已停止；目前训练好的适配器已保存。点击“继续训练”可从这里接着训练。")
            else:
                self._say("Training completed.", "训练完成。")
            self._write_summary(train_loss=getattr(result, "training_loss", None))
        except BaseException as e:  # the process lives on, whatever happened in the run
            self.state = "failed"
            self.error, self.error_zh = _explain(e, self)
            self._say("Failed: " + self.error, "失败：" + self.error_zh)
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
            self._done.set()

    def _prepare(self):
        from studio.engine import device as devices
        from studio.engine.trainers import build_trainer
        from studio.evaluate.arena import close_arenas

        close_arenas()  # models loaded for comparisons give their memory back to training
        cfg = self.cfg
        if self.run_dir is None:
            self.run_dir = _shared_run_dir(cfg, self.output_dir)
        self.metrics = MetricsLog(self.run_dir / runs.METRICS if _is_main_process() else None)
        self._write_summary()  # "preparing", and who runs it: a kill from here on reads as interrupted
        self.placement = devices.choose(cfg.training.device, cfg.training.precision)
        self._say(self.placement.reason)
        train_rows, eval_rows = self._data()
        if self.resume_from is None and _is_main_process():
            cfg.save(self.run_dir / runs.CONFIG, header=f"# Re-run with: studio train {self.run_dir / runs.CONFIG}\n")
        if self.resume_from is not None:
            state = _read_trainer_state(self.resume_from)
            self.metrics.drop_after(state.get("global_step", 0))
            self._say(f"Resuming from {self.resume_from.name} (step {state.get('global_step', 0)}).",
                      f"从 {self.resume_from.name} 继续训练（第 {state.get('global_step', 0)} 步）。")
        return build_trainer(self, train_rows, eval_rows)

    def _data(self) -> tuple[list[dict], list[dict]]:
        """The rows to train on: on resume exactly those saved in the run folder; otherwise read, split
        and saved there, so the run folder always holds the exact data it trained on."""
        from studio.engine import datasets

        data_dir = self.run_dir / "data"
        if self.resume_from is not None and (data_dir / "train.jsonl").is_file():
            train = read_jsonl(data_dir / "train.jsonl")
            ev = read_jsonl(data_dir / "eval.jsonl") if (data_dir / "eval.jsonl").is_file() else []
            return train, ev
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
            write_jsonl(data_dir / "train.jsonl", train)
            write_jsonl(data_dir / "eval.jsonl", ev)
        self._say(f"Data: {len(train)} training rows, {len(ev)} validation rows.",
                  f"数据：{len(train)} 行训练数据，{len(ev)} 行验证数据。")
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
        self._say(f"Training {self.total_steps - self.step} steps on {self.placement.device} ({self.placement.precision}); "
                  f"{self.trainable_params:,} trainable parameters "
                  f"({100 * self.trainable_params / max(1, self.total_params):.2f}% of {self.total_params:,}).",
                  f"在 {self.placement.device} 上训练 {self.total_steps - self.step} 步（{self.placement.precision}）；"
                  f"可训练参数 {self.trainable_params:,} 个"
                  f"（占全部 {self.total_params:,} 个的 {100 * self.trainable_params / max(1, self.total_params):.2f}%）。")

    def _on_step(self, state) -> None:
        self.step = int(state.global_step)
        self.epoch = float(state.epoch or 0.0)

    # ---- results ---------------------------------------------------------------------------
    def _save_final(self, trainer) -> None:
        if not _is_main_process():
            return
        target = self.run_dir / ("model" if self.cfg.method.method == "full" else "adapter")
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
        end = self.finished_at or time.time()
        summary = {
            "status": self.state,
            "steps": self.step,
            "total_steps": self.total_steps,
            "epochs": round(self.epoch, 3),
            "duration_s": round(end - (self.started_at or end), 1),
            "train_loss": train_loss if train_loss is not None and math.isfinite(train_loss) else (losses[-1] if losses else None),
            "final_loss": losses[-1] if losses else None,
            "eval_loss": evals[-1] if evals else None,
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
            "error_zh": self.error_zh,
        }
        if self.state in runs.ACTIVE:
            summary.update(runs.process_id())
        atomic_write_json(self.run_dir / runs.SUMMARY, summary)


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
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def _is_oom(e: BaseException) -> bool:
    import torch

    if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def _explain(e: BaseException, job: Job) -> tuple[str, str]:
    """(English, Chinese): why the run failed, as one plain sentence a person can act on."""
    if isinstance(e, StudioError):
        return e.text("en"), e.text("zh")
    if (disk := from_os_error(e)) is not None:
        return disk.text("en"), disk.text("zh")
    if _is_oom(e):
        return _oom_advice(job)
    if isinstance(e, KeyboardInterrupt):
        return "Interrupted.", "已中断。"
    first = str(e).splitlines()[0] if str(e) else ""
    return (f"Training failed with an unexpected error ({type(e).__name__}: {first}). The app is still running.",
            f"训练因意外错误而失败（{type(e).__name__}：{first}）。应用仍在运行。")


def _oom_advice(job: Job) -> tuple[str, str]:
    """(English, Chinese) advice after running out of memory. The English names the memory
    estimator's own recommendations when it has some; both fall back to the usual remedies."""
    base = "Out of memory: the model, its training state and this batch did not fit on the device."
    base_zh = "内存不足：模型、训练状态和这一批数据在设备上放不下。"
    t = job.cfg.training
    usual = []  # (English, Chinese)
    if t.batch_size > 1:
        usual.append((f"lower the batch size to {max(1, t.batch_size // 2)} and raise gradient accumulation to "
                      f"{t.grad_accum * 2}",
                      f"把批量减小到 {max(1, t.batch_size // 2)}，并把梯度累积增大到 {t.grad_accum * 2}"))
    usual.append(("turn on gradient checkpointing", "打开梯度检查点"))
    usual.append((f"shorten the sequence length to {max(128, t.max_length // 2)}",
                  f"把序列长度缩短到 {max(128, t.max_length // 2)}"))
    if job.cfg.method.method == "full":
        if t.optimizer == "adamw" and getattr(job.placement, "device", None) == "cuda":
            usual.append(("set the optimizer to adamw_8bit (8-bit AdamW: far less optimizer memory)",
                          "把优化器设为 adamw_8bit（8 位 AdamW：优化器内存少得多）"))
        usual.append(("use LoRA instead of full fine-tuning", "改用 LoRA，而不是全量微调"))
    tips = []
    try:
        from studio.engine.trainers import memory_recommendations

        tips = memory_recommendations(job.cfg)[:3]
    except Exception:
        pass
    if not tips:
        tips = [en for en, _ in usual]
    return (base + " Try: " + "; ".join(tips) + ". The app is still running.",
            base_zh + "可以试试：" + "；".join(zh for _, zh in usual) + "。应用仍在运行。")


def _human_seconds(s: float | None, lang: str = "en") -> str:
    if s is None:
        return "?"
    s = int(s)
    zh = lang == "zh"
    if s < 90:
        return f"{s} 秒" if zh else f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} 分钟" if zh else f"{round(s / 60)} min"
    return f"{s / 3600:.1f} 小时" if zh else f"{s / 3600:.1f} h"
