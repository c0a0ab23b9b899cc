"""The names inside a run folder (`runs/<run-id>/`, see DESIGN.md), written once: every writer and reader
of a run folder takes them from here.

    config.yaml         the complete config: `studio train runs/<id>/config.yaml` runs it again
    data/train.jsonl    the rows trained on, exactly
    data/eval.jsonl     the validation rows
    metrics.jsonl       one JSON object per logged event
    checkpoints/        checkpoint-<step>/ folders, resumable
    adapter/            the final PEFT adapter (model/ for full fine-tuning)
    best/               the best weights so far (lowest validation loss) and best.json
    summary.json        status, steps, losses, speed, memory, error
    votes.jsonl         blind comparison votes
    eval.json           automatic metrics, base vs fine-tuned (and general knowledge: "general")
    gguf.json           the last GGUF export: each file's type, size and parity with the merged model
    export/             what the Export tab wrote
"""

from __future__ import annotations

from pathlib import Path

CONFIG = "config.yaml"
DATA = "data"
TRAIN_DATA = "data/train.jsonl"
EVAL_DATA = "data/eval.jsonl"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "checkpoint-"
ADAPTER = "adapter"
MODEL = "model"
SUMMARY = "summary.json"
VOTES = "votes.jsonl"
EVAL = "eval.json"
GGUF_REPORT = "gguf.json"
EXPORT = "export"
BEST = "best"


def config(run_dir: str | Path) -> Path:
    return Path(run_dir) / CONFIG


def train_data(run_dir: str | Path) -> Path:
    return Path(run_dir) / TRAIN_DATA


def eval_data(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVAL_DATA


def metrics(run_dir: str | Path) -> Path:
    return Path(run_dir) / METRICS


def summary(run_dir: str | Path) -> Path:
    return Path(run_dir) / SUMMARY


def checkpoints(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def adapter(run_dir: str | Path) -> Path:
    return Path(run_dir) / ADAPTER


def full_model(run_dir: str | Path) -> Path:
    return Path(run_dir) / MODEL


def weights(run_dir: str | Path, full: bool) -> Path:
    """Where training leaves its result: model/ for full fine-tuning, adapter/ otherwise."""
    return full_model(run_dir) if full else adapter(run_dir)


def votes(run_dir: str | Path) -> Path:
    return Path(run_dir) / VOTES


def eval_results(run_dir: str | Path) -> Path:
    return Path(run_dir) / EVAL


def export(run_dir: str | Path) -> Path:
    return Path(run_dir) / EXPORT


def has_adapter(run_dir: str | Path) -> bool:
    return (adapter(run_dir) / "adapter_config.json").is_file()


def has_full_model(run_dir: str | Path) -> bool:
    return (full_model(run_dir) / "config.json").is_file()


def best(run_dir: str | Path) -> Path:
    return Path(run_dir) / BEST


def validation_file(run_dir: str | Path) -> Path | None:
    """The run's validation rows, or its training rows when it had no validation split; None for neither."""
    return next((p for p in (eval_data(run_dir), train_data(run_dir)) if p.is_file()), None)
