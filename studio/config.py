"""RunConfig: everything a run needs, as dataclasses, read from and written to YAML.

Each field's help text is written once, in the message catalog as `help.<Class>.<field>`
(studio/locales/), and reused as the UI's `info=` and in the CLI's help (`field_help`). `validate()` returns sentences a non-coder understands.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from studio.errors import StudioError
from studio.messages import Msg, Paragraph, say

# libyaml's safe loader and dumper where PyYAML was built with it: the same safe subset of YAML, about
# 10x faster (every open page reads run configs; the pure-Python parser took ~25 ms a file).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

EMBEDDED_MODEL = "embedded"  # the packaged SmolLM2-135M-Instruct, usable offline
STAGES = ("sft", "cpt", "dpo")
METHODS = ("lora", "qlora", "full")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "mps", "cpu")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
# The same names as studio.memory.OPTIMIZERS (a test keeps them equal), and what each is in transformers.
OPTIMIZERS = ("adamw", "adamw_8bit", "paged_adamw_8bit", "sgd")
HF_OPTIM = {"adamw": "adamw_torch", "adamw_8bit": "adamw_bnb_8bit", "paged_adamw_8bit": "paged_adamw_8bit",
            "sgd": "sgd"}
EIGHT_BIT_OPTIMIZERS = ("adamw_8bit", "paged_adamw_8bit")  # bitsandbytes: NVIDIA GPUs only


class ConfigError(StudioError, ValueError):
    """A config problem, phrased for the person who will read it."""


@dataclass
class DataConfig:
    train_file: str = ""
    eval_file: str = ""
    eval_share: float = 0.1
    max_rows: int = 0


@dataclass
class ModelConfig:
    name: str = EMBEDDED_MODEL
    revision: str = ""
    trust_remote_code: bool = False


@dataclass
class MethodConfig:
    method: str = "lora"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    quant_bits: int = 4


@dataclass
class TrainingConfig:
    stage: str = "sft"
    epochs: float = 1.0
    max_steps: int = 0
    learning_rate: float = 2e-4
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    optimizer: str = "adamw"
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    gradient_checkpointing: str = "auto"
    packing: bool = False
    dpo_beta: float = 0.1
    logging_steps: int = 1
    eval_every_epoch: bool = True  # whether to evaluate at all (when there are validation rows)
    eval_steps: int | None = None  # evaluate every N steps; None (empty) or 0 = studio.engine.best's default schedule
    early_stopping_patience: int = 0  # evaluations without improvement before stopping; 0 = off
    final_adapter: str = "best"  # best | last: the weights the run keeps
    save_minutes: float = 10.0


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    name: str = ""  # a label for the run folder; empty = derived from stage, model and time

    # ---- YAML in and out -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True)

    def save(self, path: str | Path, header: str = "") -> None:
        from studio.files import atomic_write_text

        atomic_write_text(path, header + self.to_yaml())

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RunConfig":
        d = dict(d or {})
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError("config.error.unknown_sections", names=sorted(unknown))
        parts = {}
        for f in fields(cls):
            if f.name == "name":
                continue
            sub_cls = f.default_factory  # type: ignore[misc]
            parts[f.name] = _from_section(sub_cls, d.get(f.name) or {}, f.name)
        return cls(name=str(d.get("name") or ""), **parts)

    @classmethod
    def from_yaml(cls, text: str) -> "RunConfig":
        try:
            d = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as e:
            raise ConfigError("config.error.yaml", error=str(e).splitlines()[0]) from None
        if d is not None and not isinstance(d, dict):
            raise ConfigError("config.error.mapping")
        return cls.from_dict(d)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError("config.error.no_file", path=str(p))
        cfg = cls.from_yaml(p.read_text(encoding="utf-8"))
        # Relative data paths are relative to the folder the config sits in, unless they exist from here.
        for attr in ("train_file", "eval_file"):
            value = getattr(cfg.data, attr)
            if value and not Path(value).is_absolute() and not Path(value).exists():
                for base in (p.parent, p.parent.parent, p.parent.parent.parent):
                    if (base / value).exists():
                        setattr(cfg.data, attr, str((base / value).resolve()))
                        break
        return cfg

    # ---- validation ------------------------------------------------------------------------
    def validate(self, hardware: dict | None = None) -> list[Msg]:
        """Problems that stop a run, each one plain sentence a non-coder understands (a Msg: `.text(lang)`).
        `hardware` is `studio.hardware.detect()`-like: {"cuda": bool, "mps": bool, ...}; None means
        "this machine"."""
        if hardware is None:
            hardware = _this_machine()
        t, m, d = self.training, self.method, self.data
        problems: list[Msg] = []

        def problem(key: str, **params) -> None:
            problems.append(Msg(key, **params))

        if t.stage not in STAGES:
            problem("config.problem.stage", value=t.stage)
        if m.method not in METHODS:
            problem("config.problem.method", value=m.method)
        if m.method == "qlora" and not hardware.get("cuda"):
            problem("config.problem.qlora_no_cuda")
        if m.method == "qlora" and m.quant_bits not in (4, 8):
            problem("config.problem.quant_bits")
        if t.device not in DEVICES:
            problem("config.problem.device", value=t.device)
        elif t.device == "cuda" and not hardware.get("cuda"):
            problem("config.problem.cuda_missing")
        elif t.device == "mps" and not hardware.get("mps"):
            problem("config.problem.mps_missing")
        if t.precision not in PRECISIONS:
            problem("config.problem.precision", value=t.precision)
        elif t.precision == "fp16" and not hardware.get("cuda"):
            problem("config.problem.fp16_no_cuda")
        if t.scheduler not in SCHEDULERS:
            problem("config.problem.scheduler", value=t.scheduler, choices=list(SCHEDULERS))
        if t.optimizer not in OPTIMIZERS:
            problem("config.problem.optimizer", value=t.optimizer, choices=list(OPTIMIZERS))
        elif t.optimizer in EIGHT_BIT_OPTIMIZERS:
            if not hardware.get("cuda"):
                problem("config.problem.optim8_no_cuda", name=Msg(f"config.optimizer.{t.optimizer}"))
            elif t.device in ("cpu", "mps"):
                problem("config.problem.optim8_device", name=Msg(f"config.optimizer.{t.optimizer}"))
            elif not hardware.get("bitsandbytes", True):
                problem("config.problem.optim8_bnb", name=Msg(f"config.optimizer.{t.optimizer}"))
        if str(t.gradient_checkpointing).lower() not in ("auto", "true", "false", "on", "off"):
            problem("config.problem.gc")
        if not (t.learning_rate > 0):
            problem("config.problem.learning_rate")
        if t.batch_size < 1:
            problem("config.problem.batch_size")
        if t.grad_accum < 1:
            problem("config.problem.grad_accum")
        if t.max_length < 16:
            problem("config.problem.max_length")
        if t.epochs <= 0 and t.max_steps <= 0:
            problem("config.problem.epochs")
        if t.max_steps < 0:
            problem("config.problem.max_steps")
        if (t.eval_steps or 0) < 0:
            problem("config.problem.eval_steps")
        if t.early_stopping_patience < 0:
            problem("config.problem.patience")
        if t.final_adapter not in ("best", "last"):
            problem("config.problem.final_adapter", value=t.final_adapter)
        if not (0 <= d.eval_share < 0.9):
            problem("config.problem.eval_share")
        if m.method in ("lora", "qlora"):
            if m.lora_rank < 1:
                problem("config.problem.lora_rank")
            if m.lora_alpha <= 0:
                problem("config.problem.lora_alpha")
            if not (0 <= m.lora_dropout < 1):
                problem("config.problem.lora_dropout")
        if not d.train_file:
            problem("config.problem.no_data")
        elif not Path(d.train_file).is_file():
            problem("config.problem.no_train_file", path=d.train_file)
        if d.eval_file and not Path(d.eval_file).is_file():
            problem("config.problem.no_eval_file", path=d.eval_file)
        if m.method == "full" and t.learning_rate > 1e-3:
            problem("config.problem.full_lr")
        return problems

    def check(self, hardware: dict | None = None) -> None:
        problems = self.validate(hardware)
        if problems:
            raise ConfigError(Msg("config.problems", problems=Paragraph(problems)))


def _from_section(cls, values: dict, section: str):
    if not isinstance(values, dict):
        raise ConfigError("config.error.section", section=section)
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError("config.error.unknown_settings", section=section, names=sorted(unknown), known=list(known))
    kwargs = {}
    for name, value in values.items():
        default = known[name].default
        kwargs[name] = _coerce(value, default, f"{section}.{name}")
    return cls(**kwargs)


def _coerce(value, default, where: str):
    """YAML gives 2e-4 as a string in some writers, and 'auto' where we hold strings: coerce to the default's type."""
    if value is None or (default is None and value == ""):
        return default
    try:
        if default is None:  # an optional whole number (training.eval_steps)
            return int(value)
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("true", "yes", "on", "1"):
                    return True
                if value.lower() in ("false", "no", "off", "0"):
                    return False
                raise ValueError
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value).lower() if isinstance(value, bool) else str(value)
    except (TypeError, ValueError):
        raise ConfigError("config.error.type", where=where, type=type(default).__name__, value=repr(value)) from None
    return value


def field_help(section_cls, name: str, lang: str = "en") -> str:
    """The help text of a config field (catalog id `help.<Class>.<field>`): the UI's `info=`, the CLI's help."""
    return say(f"help.{section_cls.__name__}.{name}", lang)


def _this_machine() -> dict:
    import importlib.util

    import torch

    return {"cuda": torch.cuda.is_available(),
            "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
            "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None}
