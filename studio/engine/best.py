"""Keep the best: evaluation often enough to matter, early stopping, and the best weights at the end.

`KeepBest` is a TrainerCallback. Each evaluation whose validation loss beats the best so far saves the
trainable weights (the LoRA adapter, or every weight in full fine-tuning) to `<run>/best/`; after
`patience` evaluations without improvement it stops the run. When training ends, the model in memory is
put back to the best weights unless the config asks for the last ones, so whatever is saved afterwards
(adapter/, model/, and so export and compare) is the best. The figures come from metrics.jsonl:
`best_eval(events)` is the lowest eval_loss and its step (summary.json's best_step and best_eval_loss).

Why not transformers' `load_best_model_at_end`: it needs a full checkpoint (optimizer state included) at
every evaluation; this keeps one copy of the trainable weights, rewritten only when they improve.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback

from studio import run_files
from studio.messages import Msg

EVALS_PER_EPOCH = 4  # the default schedule: small sets overfit within an epoch, so look several times
BEST_DIR = run_files.BEST
_WEIGHTS = "weights.safetensors"
_INFO = "best.json"


def best_eval(events: list[dict]) -> tuple[int, float] | None:
    """(step, eval_loss) of the lowest finite validation loss in a run's metrics events, or None."""
    found = [(e["eval_loss"], e.get("step", 0)) for e in events
             if isinstance(e.get("eval_loss"), (int, float)) and math.isfinite(e["eval_loss"])]
    if not found:
        return None
    loss, step = min(found, key=lambda x: (x[0], x[1]))
    return int(step), float(loss)


def default_eval_steps(steps_per_epoch: int) -> int:
    return max(1, math.ceil(steps_per_epoch / EVALS_PER_EPOCH))


class KeepBest(TrainerCallback):
    def __init__(self, run_dir: str | Path, patience: int = 0, keep: str = "best", say=None):
        self.dir = Path(run_dir) / BEST_DIR
        self.patience = int(patience or 0)
        self.keep = keep
        self.say = say or (lambda *_: None)
        self.best_step, self.best_loss = None, math.inf
        try:  # a resumed run goes on from the best it had kept
            info = json.loads((self.dir / _INFO).read_text(encoding="utf-8"))
            if (self.dir / _WEIGHTS).is_file():
                self.best_step, self.best_loss = int(info["step"]), float(info["eval_loss"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.bad = 0
        self.stopped_early = False

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
        loss = (metrics or {}).get("eval_loss")
        if not isinstance(loss, (int, float)) or not math.isfinite(loss):
            return
        if loss < self.best_loss:
            self.best_loss, self.best_step, self.bad = float(loss), int(state.global_step), 0
            if state.is_world_process_zero and model is not None:
                self._save(model)
            return
        self.bad += 1
        if self.patience and self.bad >= self.patience:
            control.should_training_stop = True
            self.stopped_early = True
            self.say(Msg("best.early_stop", n=self.bad, step=self.best_step, loss=self.best_loss))

    def on_train_end(self, args, state, control, model=None, **kw):
        if self.keep != "best" or self.best_step is None or model is None:
            return
        if self.best_step == state.global_step or not (self.dir / _WEIGHTS).is_file():
            return
        self._load(model)
        self.say(Msg("best.kept", step=self.best_step, loss=self.best_loss, last=state.global_step))

    def _save(self, model) -> None:
        from safetensors.torch import save_file

        from studio.files import atomic_write_text

        self.dir.mkdir(parents=True, exist_ok=True)
        weights = {n: p.detach().to("cpu").contiguous() for n, p in model.named_parameters() if p.requires_grad}
        tmp = self.dir / (_WEIGHTS + ".tmp")
        save_file(weights, str(tmp))
        tmp.replace(self.dir / _WEIGHTS)  # a kill mid-write leaves the previous best
        atomic_write_text(self.dir / _INFO, json.dumps({"step": self.best_step, "eval_loss": self.best_loss}))

    def _load(self, model) -> None:
        import torch
        from safetensors.torch import load_file

        saved = load_file(str(self.dir / _WEIGHTS))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in saved:
                    p.copy_(saved[name].to(p.device, p.dtype))
