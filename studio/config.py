"""RunConfig: everything a run needs, as dataclasses, read from and written to YAML.

Each field's help text is written once here (`metadata["help"]`, `metadata["help_zh"]`) and reused
as the UI's `info=` and in the CLI's messages. `validate()` returns sentences a non-coder understands.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from studio.errors import Sentence, StudioError, joined

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


def _f(default, help: str, help_zh: str, **kw):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, "help_zh": help_zh}, **kw)
    return field(default=default, metadata={"help": help, "help_zh": help_zh}, **kw)


@dataclass
class DataConfig:
    train_file: str = _f("", "The training data: a JSONL file of cleaned rows (messages, prompt/chosen/rejected, or text).",
                         "训练数据：清洗后的 JSONL 文件（messages、prompt/chosen/rejected 或 text）。")
    eval_file: str = _f("", "Optional validation file. Leave empty to split off a share of the training data.",
                        "可选的验证集文件。留空则从训练数据中按比例切出验证集。")
    eval_share: float = _f(0.1, "Share of the training rows held out for validation (0 turns validation off).",
                           "从训练数据中留出作验证的比例（0 表示不做验证）。")
    max_rows: int = _f(0, "Use only the first N rows (0 = all). Handy for a quick trial.",
                       "只用前 N 行（0 表示全部），适合快速试跑。")


@dataclass
class ModelConfig:
    name: str = _f(EMBEDDED_MODEL, "The base model: 'embedded' (SmolLM2-135M-Instruct, works offline), a catalog id, "
                   "a local folder, or a Hugging Face Hub id.",
                   "基座模型：'embedded'（内置 SmolLM2-135M-Instruct，离线可用）、目录中的模型 id、本地文件夹或 Hugging Face Hub id。")
    revision: str = _f("", "Hub revision (branch, tag or commit); empty for the default.", "Hub 版本（分支、标签或提交），留空用默认。")
    trust_remote_code: bool = _f(False, "Run code shipped with the model. Off by default: only turn it on for models you trust.",
                                 "运行模型自带的代码。默认关闭：只对你信任的模型打开。")


@dataclass
class MethodConfig:
    method: str = _f("lora", "full: update every weight (most memory). lora: train small adapter matrices (little memory). "
                     "qlora: LoRA on a 4-bit model (least memory, NVIDIA GPU only).",
                     "full：更新全部权重（显存最多）。lora：只训练小的适配器矩阵（显存少）。qlora：在 4 位量化模型上做 LoRA（显存最少，仅限 NVIDIA GPU）。")
    lora_rank: int = _f(8, "LoRA rank: how much the adapter can learn. 8-16 suits most tasks; higher learns more but uses more memory.",
                        "LoRA 秩：适配器的学习容量。多数任务 8-16 即可；越大学得越多，显存也越多。")
    lora_alpha: int = _f(16, "LoRA alpha: scales the adapter's effect; usually twice the rank.", "LoRA alpha：放大适配器的作用，通常取秩的两倍。")
    lora_dropout: float = _f(0.05, "Dropout inside the adapter, against overfitting on small data.", "适配器内的 dropout，防止小数据过拟合。")
    target_modules: str = _f("all-linear", "Which layers get an adapter: 'all-linear', or names separated by commas (q_proj,v_proj).",
                             "给哪些层加适配器：'all-linear'，或逗号分隔的层名（q_proj,v_proj）。")
    quant_bits: int = _f(4, "QLoRA storage: 4-bit NF4 (double quantization, bf16 compute) or 8-bit.",
                         "QLoRA 存储方式：4 位 NF4（双重量化，bf16 计算）或 8 位。")


@dataclass
class TrainingConfig:
    stage: str = _f("sft", "sft: teach answers to instructions/conversations. cpt: continue pre-training on plain text. "
                    "dpo: prefer the chosen answer over the rejected one.",
                    "sft：用指令/对话数据教模型回答。cpt：在纯文本上继续预训练。dpo：让模型偏好 chosen 而非 rejected 的回答。")
    epochs: float = _f(1.0, "Passes over the data. Too many on small data overfits (memorises instead of learning).",
                       "训练轮数。小数据上轮数过多会过拟合（死记硬背而不是学会）。")
    max_steps: int = _f(0, "Stop after this many optimizer steps (0 = run all epochs).", "最多训练这么多步（0 表示跑完所有轮）。")
    learning_rate: float = _f(2e-4, "How big each update is. LoRA: 1e-4 to 3e-4; full fine-tuning: 1e-5 to 5e-5. "
                              "Too high: loss explodes; too low: loss does not move.",
                              "每一步更新的幅度。LoRA 取 1e-4 到 3e-4；全量微调取 1e-5 到 5e-5。太大损失会爆炸，太小损失不动。")
    batch_size: int = _f(8, "Rows per step on the device. Larger is faster but needs more memory.",
                         "每一步在设备上处理的行数。越大越快，但更占内存。")
    grad_accum: int = _f(1, "Gradient accumulation: add up this many batches before each update (effective batch = batch x this).",
                         "梯度累积：累积多少个批次再更新一次（等效批量 = 批量 × 此值）。")
    max_length: int = _f(512, "Longest row in tokens; longer rows are cut. Memory grows with it.",
                         "每行最多多少个 token，超出会被截断。内存随之增长。")
    warmup_ratio: float = _f(0.03, "Share of steps over which the learning rate ramps up from zero.", "学习率从零升到设定值所用的步数比例。")
    scheduler: str = _f("cosine", "How the learning rate falls over the run: cosine, linear or constant.",
                        "学习率随训练如何下降：cosine、linear 或 constant。")
    weight_decay: float = _f(0.0, "Weight decay (a mild pull of weights towards zero).", "权重衰减（把权重轻微拉向零）。")
    optimizer: str = _f("adamw", "How updates are computed. adamw: the standard; it keeps two running averages per "
                        "trained number, which for full fine-tuning is twice the model's size in memory. adamw_8bit: "
                        "the same, stored in 8 bits: much less memory at almost the same quality (NVIDIA GPU only). "
                        "paged_adamw_8bit: 8-bit, and can spill to CPU memory when the GPU runs short. sgd: no "
                        "state at all, but rarely learns as well.",
                        "如何计算每一步更新。adamw：标准做法，为每个被训练的参数保存两个动量；全量微调时约占模型两倍大小的内存。"
                        "adamw_8bit：同样的算法，用 8 位保存，内存少得多，效果几乎不变（仅限 NVIDIA GPU）。"
                        "paged_adamw_8bit：8 位，且显存不够时可暂存到内存。sgd：不保存状态，但通常学得不如 AdamW。")
    seed: int = _f(42, "Random seed: the same seed and data give the same run.", "随机种子：相同的种子和数据得到相同的结果。")
    device: str = _f("auto", "Where to train: auto picks CUDA, then Apple MPS, then CPU.", "在哪里训练：auto 依次选择 CUDA、Apple MPS、CPU。")
    precision: str = _f("auto", "Number format: bf16 halves memory and is fast where supported; fp32 is exact but slow. auto picks for you.",
                        "数值精度：bf16 在支持的硬件上省一半内存且更快；fp32 最精确但慢。auto 自动选择。")
    gradient_checkpointing: str = _f("auto", "Recompute activations instead of storing them: saves memory, costs about 20-30% speed. "
                                     "auto turns it on only when memory needs it.",
                                     "梯度检查点：重算激活值而非保存，省内存但慢 20-30%。auto 只在内存不够时打开。")
    packing: bool = _f(False, "Pack several short rows into one sequence (faster on GPUs; always on for CPT).",
                       "把多条短数据拼成一条序列（GPU 上更快；CPT 总是打开）。")
    dpo_beta: float = _f(0.1, "DPO beta: how far the model may move from the base (higher = stays closer).",
                         "DPO beta：模型可以离基座多远（越大越接近基座）。")
    logging_steps: int = _f(1, "Log metrics every N steps.", "每 N 步记录一次指标。")
    eval_every_epoch: bool = _f(True, "Compute validation loss at the end of every epoch.", "每轮结束时计算验证损失。")
    save_minutes: float = _f(10.0, "Also save a checkpoint every this many minutes (0 = only at the end of each epoch): "
                             "if the machine stops, the run resumes from the last one.",
                             "除了每轮结束时，每隔这么多分钟再保存一个检查点（0 = 只在每轮结束时）：机器意外停止时，从最近的检查点继续。")


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
    """The help text of a config field, in English or Chinese (for UI `info=` and CLI help)."""
    for f in fields(section_cls):
        if f.name == name:
            return f.metadata.get("help_zh" if lang == "zh" else "help", "")
    raise KeyError(name)


def _this_machine() -> dict:
    import importlib.util

    import torch

    return {"cuda": torch.cuda.is_available(),
            "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
            "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None}
