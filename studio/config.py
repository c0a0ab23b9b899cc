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

from studio.errors import Sentence, StudioError, joined
from studio.messages import say

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
EIGHT_BIT_OPTIMIZERS = {"adamw_8bit": ("8-bit AdamW", "8 位 AdamW"),
                        "paged_adamw_8bit": ("Paged 8-bit AdamW", "分页 8 位 AdamW")}


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
    eval_every_epoch: bool = True
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
        from studio.paths import atomic_write_text

        atomic_write_text(path, header + self.to_yaml())

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RunConfig":
        d = dict(d or {})
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"Unknown section(s) in the config: {', '.join(sorted(unknown))}. "
                              "Expected: data, model, method, training, name.",
                              f"配置中有未知的部分：{'、'.join(sorted(unknown))}。应为 data、model、method、training、name。")
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
            raise ConfigError(f"The config is not valid YAML: {str(e).splitlines()[0]}",
                              f"配置不是有效的 YAML：{str(e).splitlines()[0]}") from None
        if d is not None and not isinstance(d, dict):
            raise ConfigError("The config file must be a YAML mapping with sections data, model, method and training.",
                              "配置文件必须是一个 YAML 映射，包含 data、model、method 和 training 几个部分。")
        return cls.from_dict(d)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"No config file at {p}.", f"{p} 处没有配置文件。")
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
    def validate(self, hardware: dict | None = None, lang: str = "en") -> list[Sentence]:
        """Problems that stop a run, each one plain sentence a non-coder understands: `Sentence`s, which are
        strings in `lang` ("en" or "zh") that carry both languages (`.en`, `.zh`, `.text(lang)`).
        `hardware` is `studio.hardware.detect()`-like: {"cuda": bool, "mps": bool, ...}; None means
        "this machine"."""
        if hardware is None:
            hardware = _this_machine()
        t, m, d = self.training, self.method, self.data
        problems: list[Sentence] = []

        def problem(en: str, zh: str) -> None:
            problems.append(Sentence(en, zh, lang))

        if t.stage not in STAGES:
            problem(f"Unknown stage '{t.stage}'. Choose sft, cpt or dpo.",
                    f"未知的训练阶段“{t.stage}”。请选择 sft、cpt 或 dpo。")
        if m.method not in METHODS:
            problem(f"Unknown method '{m.method}'. Choose lora, qlora or full.",
                    f"未知的方法“{m.method}”。请选择 lora、qlora 或 full。")
        if m.method == "qlora" and not hardware.get("cuda"):
            problem("QLoRA needs an NVIDIA GPU; this machine has none. Choose LoRA.",
                    "QLoRA 需要 NVIDIA GPU，而这台机器没有。请选择 LoRA。")
        if m.method == "qlora" and m.quant_bits not in (4, 8):
            problem("QLoRA stores the model in 4 or 8 bits; set quant_bits to 4 or 8.",
                    "QLoRA 以 4 位或 8 位存储模型；请把 quant_bits 设为 4 或 8。")
        if t.device not in DEVICES:
            problem(f"Unknown device '{t.device}'. Choose auto, cuda, mps or cpu.",
                    f"未知的设备“{t.device}”。请选择 auto、cuda、mps 或 cpu。")
        elif t.device == "cuda" and not hardware.get("cuda"):
            problem("You asked for an NVIDIA GPU (cuda) but this machine has none. Set the device to auto.",
                    "你选择了 NVIDIA GPU（cuda），但这台机器没有。请把设备设为 auto。")
        elif t.device == "mps" and not hardware.get("mps"):
            problem("You asked for Apple's GPU (mps) but this machine has none. Set the device to auto.",
                    "你选择了 Apple 的 GPU（mps），但这台机器没有。请把设备设为 auto。")
        if t.precision not in PRECISIONS:
            problem(f"Unknown precision '{t.precision}'. Choose auto, bf16, fp16 or fp32.",
                    f"未知的精度“{t.precision}”。请选择 auto、bf16、fp16 或 fp32。")
        elif t.precision == "fp16" and not hardware.get("cuda"):
            problem("fp16 training needs an NVIDIA GPU. Choose auto, bf16 or fp32.",
                    "fp16 训练需要 NVIDIA GPU。请选择 auto、bf16 或 fp32。")
        if t.scheduler not in SCHEDULERS:
            problem(f"Unknown learning-rate schedule '{t.scheduler}'. Choose one of {', '.join(SCHEDULERS)}.",
                    f"未知的学习率调度“{t.scheduler}”。请从 {'、'.join(SCHEDULERS)} 中选择。")
        if t.optimizer not in OPTIMIZERS:
            problem(f"Unknown optimizer '{t.optimizer}'. Choose one of {', '.join(OPTIMIZERS)}.",
                    f"未知的优化器“{t.optimizer}”。请从 {'、'.join(OPTIMIZERS)} 中选择。")
        elif t.optimizer in EIGHT_BIT_OPTIMIZERS:
            name, name_zh = EIGHT_BIT_OPTIMIZERS[t.optimizer]
            if not hardware.get("cuda"):
                problem(f"{name} needs an NVIDIA GPU and bitsandbytes; this machine has none. Choose AdamW.",
                        f"{name_zh} 需要 NVIDIA GPU 和 bitsandbytes，而这台机器没有。请选择 AdamW。")
            elif t.device in ("cpu", "mps"):
                problem(f"{name} runs only on an NVIDIA GPU; set the device to auto or cuda, or choose AdamW.",
                        f"{name_zh} 只能在 NVIDIA GPU 上运行；请把设备设为 auto 或 cuda，或选择 AdamW。")
            elif not hardware.get("bitsandbytes", True):
                problem(f"{name} needs the bitsandbytes package, which is not installed here. "
                        "Install it (pip install bitsandbytes) or choose AdamW.",
                        f"{name_zh} 需要 bitsandbytes 包，而这里没有安装。请安装（pip install bitsandbytes）或选择 AdamW。")
        if str(t.gradient_checkpointing).lower() not in ("auto", "true", "false", "on", "off"):
            problem("Gradient checkpointing must be auto, on or off.", "梯度检查点必须是 auto、on 或 off。")
        if not (t.learning_rate > 0):
            problem("The learning rate must be a positive number, for example 0.0002.",
                    "学习率必须是正数，例如 0.0002。")
        if t.batch_size < 1:
            problem("The batch size must be at least 1.", "批量大小至少为 1。")
        if t.grad_accum < 1:
            problem("Gradient accumulation must be at least 1.", "梯度累积至少为 1。")
        if t.max_length < 16:
            problem("The sequence length must be at least 16 tokens.", "序列长度至少为 16 个 token。")
        if t.epochs <= 0 and t.max_steps <= 0:
            problem("Set at least one epoch (or a number of steps).", "请至少设置 1 轮（或设置训练步数）。")
        if t.max_steps < 0:
            problem("The number of steps cannot be negative.", "训练步数不能是负数。")
        if not (0 <= d.eval_share < 0.9):
            problem("The validation share must be between 0 and 0.9 (for example 0.1 for 10%).",
                    "验证集比例必须在 0 到 0.9 之间（例如 0.1 表示 10%）。")
        if m.method in ("lora", "qlora"):
            if m.lora_rank < 1:
                problem("The LoRA rank must be at least 1 (8 or 16 is usual).", "LoRA 秩至少为 1（通常取 8 或 16）。")
            if m.lora_alpha <= 0:
                problem("LoRA alpha must be positive (usually twice the rank).", "LoRA alpha 必须是正数（通常取秩的两倍）。")
            if not (0 <= m.lora_dropout < 1):
                problem("LoRA dropout must be between 0 and 1 (0.05 is usual).", "LoRA dropout 必须在 0 到 1 之间（通常取 0.05）。")
        if not d.train_file:
            problem("No training data: choose a data file.", "没有训练数据：请选择一个数据文件。")
        elif not Path(d.train_file).is_file():
            problem(f"The training data file {d.train_file} does not exist.", f"训练数据文件 {d.train_file} 不存在。")
        if d.eval_file and not Path(d.eval_file).is_file():
            problem(f"The validation file {d.eval_file} does not exist.", f"验证集文件 {d.eval_file} 不存在。")
        if m.method == "full" and t.learning_rate > 1e-3:
            problem("That learning rate is far too high for full fine-tuning; use 1e-5 to 5e-5.",
                    "这个学习率对全量微调来说太高了；请用 1e-5 到 5e-5。")
        return problems

    def check(self, hardware: dict | None = None) -> None:
        problems = self.validate(hardware)
        if problems:
            raise ConfigError(joined(problems), joined(problems, "zh"))


def _from_section(cls, values: dict, section: str):
    if not isinstance(values, dict):
        raise ConfigError(f"The '{section}' section must be a mapping of settings.",
                          f"“{section}”部分必须是一组设置（YAML 映射）。")
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"Unknown setting(s) in '{section}': {', '.join(sorted(unknown))}. "
                          f"Known: {', '.join(known)}.",
                          f"“{section}”中有未知的设置：{'、'.join(sorted(unknown))}。可用的设置：{'、'.join(known)}。")
    kwargs = {}
    for name, value in values.items():
        default = known[name].default
        kwargs[name] = _coerce(value, default, f"{section}.{name}")
    return cls(**kwargs)


def _coerce(value, default, where: str):
    """YAML gives 2e-4 as a string in some writers, and 'auto' where we hold strings: coerce to the default's type."""
    if value is None:
        return default
    try:
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
        raise ConfigError(f"'{where}' should be a {type(default).__name__}, got {value!r}.",
                          f"“{where}”应为 {type(default).__name__} 类型，收到的是 {value!r}。") from None
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
