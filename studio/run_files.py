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
    trial.json          a small trial run's verdict (studio.engine.trial; trial runs live in <runs>/trials/)
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
TRIAL = "trial.json"


def _at(name: str):
    def path(run_dir: str | Path) -> Path:
        return Path(run_dir) / name
    path.__doc__ = f"<run>/{name}"
    return path


# run_files.summary(run_dir) -> <run>/summary.json, and so on: one reader's name for each file above.
config, train_data, eval_data, metrics = _at(CONFIG), _at(TRAIN_DATA), _at(EVAL_DATA), _at(METRICS)
summary, checkpoints, adapter, full_model = _at(SUMMARY), _at(CHECKPOINTS), _at(ADAPTER), _at(MODEL)
votes, eval_results, export, best, trial_result = _at(VOTES), _at(EVAL), _at(EXPORT), _at(BEST), _at(TRIAL)


def weights(run_dir: str | Path, full: bool) -> Path:
    """Where training leaves its result: model/ for full fine-tuning, adapter/ otherwise."""
    return full_model(run_dir) if full else adapter(run_dir)


def has_adapter(run_dir: str | Path) -> bool:
    return (adapter(run_dir) / "adapter_config.json").is_file()


def has_full_model(run_dir: str | Path) -> bool:
    return (full_model(run_dir) / "config.json").is_file()


def validation_file(run_dir: str | Path) -> Path | None:
    """The run's validation rows, or its training rows when it had no validation split; None for neither."""
    return next((p for p in (eval_data(run_dir), train_data(run_dir)) if p.is_file()), None)
