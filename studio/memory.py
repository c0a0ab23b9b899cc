"""Peak training memory from a model's dimensions: pure arithmetic, no torch, no weights.

The one function the engine calls (to put `estimated_memory_bytes` in summary.json):

    from studio.memory import estimate_for_run
    est = estimate_for_run(run_config, dims)          # dims: ModelDims, dims_from_config(...) or catalog
    summary["estimated_memory_bytes"] = est.total_bytes

The Model tab calls `estimate(...)`, `recommendations(...)`, `largest_fitting_model(...)` and
`breakdown_figure(...)`; the CLI (`studio estimate`) calls the same functions.

What is modelled (and why), for a Hugging Face causal LM trained by TRL/PEFT on one device:

* weights: the loaded dtype. Full fine-tuning with `bf16` keeps the weights in bf16 and so do the
  gradients and AdamW's two states (HF Trainer with `bf16=True` trains the model in the dtype it was
  loaded in: "pure bf16", 2+2+4 = 8 bytes per parameter). `fp16`, or `master_weights_fp32=True`, means
  fp32 master weights under autocast: 4+4+8 bytes per parameter plus a bf16/fp16 copy of every weight
  that autocast caches through forward and backward.
* QLoRA: bitsandbytes NF4 stores each linear weight in 4 bits plus one absmax per 64 weights; double
  quantization stores those absmax values in 8 bits (plus one fp32 per 256 blocks): 0.5 + 1/64 +
  4/16384 = 0.516 bytes per parameter (the QLoRA paper's ~0.52). Embeddings, the output head, norms
  and biases are NOT quantized: they stay in 16-bit (or fp32 after `prepare_model_for_kbit_training`).
  8-bit (LLM.int8) stores 1 byte per parameter plus one fp32 scale per output row.
* LoRA adapters: PEFT upcasts adapter weights to fp32 (`autocast_adapter_dtype=True`), so weights,
  gradients and AdamW states cost 4+4+8 bytes per adapter parameter; TRL casts them to bf16 on a
  quantized (QLoRA) base: 2+2+4.
* activations: the tensors autograd saves for backward, counted layer by layer for the HF
  implementation (RMSNorm upcasts its input to fp32 and saves it; SDPA/FlashAttention saves q, k, v and
  the output, eager attention also the fp32 softmax of size heads x seq x seq; the gated MLP saves
  gate, up and act(gate); frozen linears save nothing; every LoRA module saves its own bf16 copy of
  its input, plus a one-byte dropout mask). Gradient checkpointing keeps only each layer's input and
  recomputes one layer at a time during backward.
* logits: the loss head. TRL >= 1.x computes SFT/DPO log-probabilities in chunks without the full
  (tokens x vocab) logits ("fused"); the model's own loss in recent transformers keeps bf16 logits, an
  fp32 upcast, the fp32 log-softmax and its gradients: about 12 bytes per token per vocabulary entry,
  which dominates for 128K-256K vocabularies.
* runtime overhead: the CUDA context (not seen by `torch.cuda.max_memory_allocated`, seen by
  nvidia-smi) and the caching allocator's slack.

Breakdown values are bytes at the moment of peak; `total_bytes` is what nvidia-smi would show,
`allocated_bytes` what `torch.cuda.max_memory_allocated()` would report.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from studio.errors import StudioError

GiB = 1024**3
FIT_SHARE = 0.90  # the usable share of device memory
TIGHT_SHARE = 0.80  # above this share of the device it fits, but with little room

METHODS = ("full", "lora", "qlora")
OPTIMIZERS = ("adamw", "adamw_8bit", "paged_adamw_8bit", "sgd")
PRECISIONS = ("bf16", "fp16", "fp32")
ATTENTIONS = ("sdpa", "flash", "eager")
LOSSES = ("fused", "chunked", "hf", "hf_legacy", "hf_bf16")

# Bytes kept per (token x vocabulary entry) at the loss's peak, by implementation:
#   hf:      bf16 logits are dropped, fp32 upcast -> fp32 log_softmax (saved) -> backward holds the saved
#            output, its gradient and the input gradient: 3 x 4 bytes.
#   hf_legacy: transformers 4.x also kept an fp32 copy of the shifted logits (`logits[..., :-1, :].contiguous()`)
#            next to the upcast: about 14 bytes.
#   hf_bf16: remote-code models that never upcast (Qwen-1, ...): logits, a shifted copy, log_softmax and
#            their gradients, all in 16-bit: about 5 x 2 bytes.
#   chunked: litgpt/torchtune chunked cross-entropy: the bf16 logits of every chunk are kept for
#            backward, one chunk is upcast at a time: about 2 x 2 bytes.
#   fused:   never materialised (TRL's chunked log-prob, Liger, Cut Cross-Entropy): a fixed tile.
_LOSS_BYTES_PER_LOGIT = {"hf": 12.0, "hf_legacy": 14.0, "hf_bf16": 10.0, "chunked": 4.0, "fused": 0.0}
_FUSED_TILE = (4096, 32768)  # TRL's TOKEN_CHUNK_SIZE x vocabulary chunk


# --------------------------------------------------------------------------------------------
# Model dimensions
# --------------------------------------------------------------------------------------------

# Per family: linear modules of one decoder layer as name -> (roles it computes). Roles: q k v o gate up down.
_FAMILY_MODULES = {
    "llama": {"q_proj": ("q",), "k_proj": ("k",), "v_proj": ("v",), "o_proj": ("o",),
              "gate_proj": ("gate",), "up_proj": ("up",), "down_proj": ("down",)},
    "phi3": {"qkv_proj": ("q", "k", "v"), "o_proj": ("o",), "gate_up_proj": ("gate", "up"), "down_proj": ("down",)},
    "chatglm": {"query_key_value": ("q", "k", "v"), "dense": ("o",), "dense_h_to_4h": ("gate", "up"),
                "dense_4h_to_h": ("down",)},
    "qwen": {"c_attn": ("q", "k", "v"), "attn.c_proj": ("o",), "w1": ("up",), "w2": ("gate",), "mlp.c_proj": ("down",)},
    "internlm2": {"wqkv": ("q", "k", "v"), "wo": ("o",), "w1": ("gate",), "w3": ("up",), "w2": ("down",)},
    "baichuan": {"W_pack": ("q", "k", "v"), "o_proj": ("o",), "gate_proj": ("gate",), "up_proj": ("up",),
                 "down_proj": ("down",)},
}
_GENERIC_ROLE_NAMES = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                       "up_proj": "up", "down_proj": "down", "query": "q", "key": "k", "value": "v"}

# model_type -> (family, default tie_word_embeddings, norms per layer, default attention)
_MODEL_TYPES = {
    "llama": ("llama", False, 2, "sdpa"), "mistral": ("llama", False, 2, "sdpa"),
    "qwen2": ("llama", False, 2, "sdpa"), "qwen3": ("llama", False, 2, "sdpa"),
    "gemma": ("llama", True, 2, "sdpa"), "gemma2": ("llama", True, 4, "eager"),
    "gemma3_text": ("llama", True, 4, "sdpa"), "gemma3": ("llama", True, 4, "sdpa"),
    "olmo": ("llama", False, 2, "sdpa"), "olmo2": ("llama", False, 2, "sdpa"),
    "granite": ("llama", False, 2, "sdpa"), "cohere": ("llama", True, 2, "sdpa"),
    "smollm3": ("llama", True, 2, "sdpa"), "exaone": ("llama", False, 2, "sdpa"),
    "deepseek": ("llama", False, 2, "sdpa"), "yi": ("llama", False, 2, "sdpa"),
    "phi3": ("phi3", False, 2, "sdpa"), "chatglm": ("chatglm", False, 2, "sdpa"),
    "glm": ("llama", False, 2, "sdpa"), "glm4": ("llama", False, 4, "sdpa"),
    "qwen": ("qwen", False, 2, "flash"), "internlm2": ("internlm2", False, 2, "sdpa"),
    "baichuan": ("baichuan", False, 2, "sdpa"),
}


@dataclass(frozen=True)
class ModelDims:
    """The dimensions the estimator needs, named as in a Hugging Face config.json."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    head_dim: int | None = None
    model_type: str = "llama"
    qkv_bias: bool = False
    name: str = ""

    def __post_init__(self):
        for f in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                  "intermediate_size", "vocab_size"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise StudioError(f"The model's {f} must be a positive whole number, got {v!r}.",
                                  f"模型的 {f} 必须是正整数，收到的是 {v!r}。")
        if self.model_type not in _MODEL_TYPES:
            raise StudioError(f"Unknown architecture '{self.model_type}': the memory estimator knows "
                              f"{', '.join(sorted(_MODEL_TYPES))}.",
                              f"未知的模型架构“{self.model_type}”：内存估算器认识的有 "
                              f"{'、'.join(sorted(_MODEL_TYPES))}。")
        if self.num_attention_heads % self.num_key_value_heads:
            raise StudioError(f"The model has {self.num_attention_heads} attention heads, which is not a multiple "
                              f"of its {self.num_key_value_heads} key/value heads: the config is inconsistent.",
                              f"模型有 {self.num_attention_heads} 个注意力头，不是其 {self.num_key_value_heads} 个"
                              f"键/值头的整数倍：配置前后矛盾。")

    # ---- derived sizes -----------------------------------------------------------------------
    @property
    def family(self) -> str:
        return _MODEL_TYPES[self.model_type][0]

    @property
    def norms_per_layer(self) -> int:
        return _MODEL_TYPES[self.model_type][2]

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_size

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_size

    def role_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each role in one layer."""
        h, i = self.hidden_size, self.intermediate_size
        return {"q": (h, self.q_dim), "k": (h, self.kv_dim), "v": (h, self.kv_dim), "o": (self.q_dim, h),
                "gate": (h, i), "up": (h, i), "down": (i, h)}

    def modules(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear module of one layer, by its name in the model."""
        roles = self.role_shapes()
        out = {}
        for name, rs in _FAMILY_MODULES[self.family].items():
            out[name] = (roles[rs[0]][0], sum(roles[r][1] for r in rs))
        return out

    @property
    def layer_linear_params(self) -> int:
        return sum(a * b for a, b in self.modules().values())

    @property
    def layer_other_params(self) -> int:
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return self.norms_per_layer * self.hidden_size + bias

    @property
    def linear_params(self) -> int:
        """Parameters in the decoder layers' linear weights: what bitsandbytes quantizes."""
        return self.num_hidden_layers * self.layer_linear_params

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def head_params(self) -> int:
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def param_count(self) -> int:
        return (self.linear_params + self.num_hidden_layers * self.layer_other_params
                + self.embedding_params + self.head_params + self.hidden_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _first(cfg: dict, *keys, default=None):
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return default


def dims_from_config(path_or_dict: str | Path | dict, name: str = "") -> ModelDims:
    """ModelDims from a Hugging Face config.json: a dict, the file, or the folder holding it."""
    if isinstance(path_or_dict, dict):
        cfg = path_or_dict
    else:
        p = Path(path_or_dict)
        if p.is_dir():
            p = p / "config.json"
        if not p.is_file():
            raise StudioError(f"There is no config.json in {p.parent}: point to a model folder that has one.",
                              f"{p.parent} 里没有 config.json：请指向一个带有它的模型文件夹。")
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudioError(f"The file {p} is not valid JSON ({type(e).__name__}).",
                              f"文件 {p} 不是有效的 JSON（{type(e).__name__}）。") from None
        if not isinstance(cfg, dict):
            raise StudioError(f"The file {p} does not hold a JSON object of model settings.",
                              f"文件 {p} 里不是记录模型设置的 JSON 对象。")
        name = name or p.parent.name
    if isinstance(cfg.get("text_config"), dict) and "hidden_size" not in cfg:
        sub = dict(cfg["text_config"])
        sub.setdefault("model_type", cfg.get("model_type", ""))
        cfg = sub
    model_type = str(cfg.get("model_type") or "").lower()
    if not model_type:
        arch = " ".join(cfg.get("architectures") or []).lower()
        for known in sorted(_MODEL_TYPES, key=len, reverse=True):
            if known in arch.replace("forcausallm", "").replace("model", ""):
                model_type = known
                break
    if not model_type:
        raise StudioError("The config.json names no model_type or architecture, so its layout is unknown.",
                          "config.json 里没有写 model_type 或 architecture，所以不知道模型的结构。")
    if model_type not in _MODEL_TYPES:
        raise StudioError(f"Unknown architecture '{model_type}': the memory estimator knows "
                          f"{', '.join(sorted(_MODEL_TYPES))}.",
                          f"未知的模型架构“{model_type}”：内存估算器认识的有 {'、'.join(sorted(_MODEL_TYPES))}。")
    if _first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0) and \
            _first(cfg, "num_local_experts", "num_experts", "n_routed_experts") > 1:
        raise StudioError(f"'{model_type}' is a mixture-of-experts model, which the memory estimator does not cover yet.",
                          f"“{model_type}”是混合专家（MoE）模型，内存估算器暂时还不支持。")
    family, tie_default, _, _ = _MODEL_TYPES[model_type]
    hidden = _first(cfg, "hidden_size", "n_embd", "d_model")
    layers = _first(cfg, "num_hidden_layers", "num_layers", "n_layer")
    heads = _first(cfg, "num_attention_heads", "n_head")
    kv = _first(cfg, "num_key_value_heads", "multi_query_group_num", "num_kv_heads", "n_head_kv", default=heads)
    if family == "chatglm" and not cfg.get("multi_query_attention", True):
        kv = heads
    inter = _first(cfg, "intermediate_size", "ffn_hidden_size", "n_inner")
    if family == "qwen" and inter:
        inter = inter // 2  # Qwen-1 states the two MLP branches together
    vocab = _first(cfg, "padded_vocab_size", "vocab_size") if family == "chatglm" else _first(cfg, "vocab_size")
    head_dim = _first(cfg, "head_dim", "kv_channels") if family != "llama" or cfg.get("head_dim") else None
    missing = [k for k, v in (("hidden_size", hidden), ("num_hidden_layers", layers), ("num_attention_heads", heads),
                              ("intermediate_size", inter), ("vocab_size", vocab)) if v is None]
    if missing:
        raise StudioError(f"The config.json lacks {', '.join(missing)}, which the memory estimate needs.",
                          f"config.json 里缺少内存估算需要的 {'、'.join(missing)}。")
    try:
        ints = [int(x) for x in (hidden, layers, heads, kv, inter, vocab)]
        if any(float(x) != int(x) for x in (hidden, layers, heads, kv, inter, vocab)):
            raise ValueError
        head_dim = int(head_dim) if head_dim else None
    except (TypeError, ValueError):
        raise StudioError("The config.json has sizes that are not whole numbers.",
                          "config.json 里有不是整数的尺寸。") from None
    if head_dim is not None and head_dim == ints[0] // ints[2]:
        head_dim = None
    qkv_bias = bool(cfg.get("attention_bias") or cfg.get("add_qkv_bias") or family in ("qwen",)
                    or model_type == "qwen2")
    return ModelDims(hidden_size=ints[0], num_hidden_layers=ints[1], num_attention_heads=ints[2],
                     num_key_value_heads=ints[3], intermediate_size=ints[4], vocab_size=ints[5],
                     tie_word_embeddings=bool(cfg.get("tie_word_embeddings", tie_default)),
                     head_dim=head_dim, model_type=model_type, qkv_bias=qkv_bias,
                     name=name or str(cfg.get("_name_or_path") or ""))


def resolve_target_modules(dims: ModelDims, target_modules: str | Iterable[str] = "all-linear") -> list[str]:
    """Names of the layer modules that get a LoRA adapter ('all-linear', 'q_proj,v_proj', or a list)."""
    mods = _FAMILY_MODULES[dims.family]
    if isinstance(target_modules, str):
        t = target_modules.strip()
        if t.lower() in ("", "all-linear", "all_linear", "all"):
            return list(mods)
        names = [x.strip() for x in t.split(",") if x.strip()]
    else:
        names = [str(x).strip() for x in target_modules]
    chosen = []
    for n in names:
        hits = [m for m in mods if m == n or m.split(".")[-1] == n]
        if not hits and n in _GENERIC_ROLE_NAMES:  # q_proj on a fused-qkv model means the fused module
            role = _GENERIC_ROLE_NAMES[n]
            hits = [m for m, rs in mods.items() if role in rs]
        if not hits and n.lower() in ("lm_head", "embed_tokens"):
            continue
        chosen += [h for h in hits if h not in chosen]
    if not chosen:
        raise StudioError(f"None of the target modules ({', '.join(names)}) exist in this model; "
                          f"it has {', '.join(mods)} (or use all-linear).",
                          f"这个模型里没有任何一个目标层（{'、'.join(names)}）；"
                          f"它有的是 {'、'.join(mods)}（也可以用 all-linear）。")
    return chosen


def lora_param_count(dims: ModelDims, rank: int, target_modules="all-linear") -> int:
    mods = dims.modules()
    return dims.num_hidden_layers * sum(rank * (mods[m][0] + mods[m][1]) for m in resolve_target_modules(dims, target_modules))


# --------------------------------------------------------------------------------------------
# The estimate
# --------------------------------------------------------------------------------------------

@dataclass
class Estimate:
    """Peak memory of one training setup. All sizes in bytes."""

    total_bytes: int
    breakdown: dict[str, int]
    allocated_bytes: int  # what torch.cuda.max_memory_allocated would show (no context, no allocator slack)
    device: str  # "cuda" | "mps" | "cpu"
    capacity_bytes: int | None = None
    param_count: int = 0
    trainable_params: int = 0
    setup: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)  # filled by estimate_for_run when a size is known

    @property
    def verdict(self) -> str | None:
        """'fits', 'tight' or 'does not fit' against 90% of the device; None when the size is unknown."""
        if not self.capacity_bytes:
            return None
        share = self.total_bytes / self.capacity_bytes
        if share <= TIGHT_SHARE:
            return "fits"
        if share <= FIT_SHARE:
            return "tight"
        return "does not fit"

    @property
    def fits(self) -> bool | None:
        v = self.verdict
        return None if v is None else v != "does not fit"

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GiB

    def summary(self) -> str:
        s = f"{self.total_gib:.1f} GiB"
        if self.capacity_bytes:
            s += f" of {self.capacity_bytes / GiB:.1f} GiB: {self.verdict}"
        return s

    def to_dict(self) -> dict[str, Any]:
        return {"total_bytes": int(self.total_bytes), "total_gib": round(self.total_gib, 2),
                "allocated_bytes": int(self.allocated_bytes), "breakdown": {k: int(v) for k, v in self.breakdown.items()},
                "device": self.device, "capacity_bytes": self.capacity_bytes, "fits": self.fits,
                "verdict": self.verdict, "param_count": self.param_count, "trainable_params": self.trainable_params,
                "setup": dict(self.setup), "assumptions": list(self.assumptions),
                "recommendations": list(self.recommendations)}


BREAKDOWN_LABELS = {
    "weights": ("Model weights", "模型权重"),
    "trainable": ("Trainable parameters (LoRA)", "可训练参数（LoRA）"),
    "gradients": ("Gradients", "梯度"),
    "optimizer": ("Optimizer states", "优化器状态"),
    "activations": ("Activations", "激活值"),
    "logits": ("Logits and loss", "logits 与损失"),
    "overhead": ("Runtime overhead", "运行时开销"),
}


def estimate(dims: ModelDims, method: str = "lora", *, batch_size: int = 1, seq_len: int = 512,
             gradient_checkpointing: bool = True, precision: str = "bf16", optimizer: str = "adamw",
             lora_rank: int = 8, target_modules: str | Iterable[str] = "all-linear", lora_dropout: float = 0.05,
             quant_bits: int = 4, double_quant: bool = True, grad_accum: int = 1, packing: bool = False,
             stage: str = "sft", device: str = "cuda", capacity_bytes: int | None = None,
             attention: str = "auto", loss: str = "hf", master_weights_fp32: bool | None = None,
             lora_dtype: str = "auto", autocast: bool = True, upcast_non_quantized: bool = False,
             padding_mask: bool | None = None, quant_saves_inputs: bool = False, cuda_context_bytes: int | None = None, allocator_slack: float | None = None) -> Estimate:
    """Peak memory of training `dims` with this setup (see the module docstring for the model).

    device: "cuda" (GPU memory, what nvidia-smi shows), "mps" or "cpu" (RAM). stage "dpo" doubles the
    rows (chosen + rejected). attention: auto | sdpa | flash | eager.
    loss: how the loss head is computed. "hf" (default): full logits with an fp32 upcast, as Hugging Face
    models and most published measurements do; conservative for TRL >= 1.x, whose SFT/DPO trainers compute
    it in chunks ("fused"; `estimate_for_run` picks that when TRL's fused head is present). "hf_legacy"
    (transformers 4.x), "hf_bf16" (remote code without upcast), "chunked" (litgpt, torchtune).
    The options after `autocast` describe other frameworks, for checking against published measurements.
    """
    method, precision, optimizer = str(method).lower(), str(precision).lower(), str(optimizer).lower()
    if method not in METHODS:
        raise StudioError(f"Unknown method '{method}'. Choose full, lora or qlora.",
                          f"未知的方法“{method}”。请选择 full、lora 或 qlora。")
    if precision in ("auto", "bfloat16"):
        precision = "bf16"
    if precision not in PRECISIONS:
        raise StudioError(f"Unknown precision '{precision}'. Choose bf16, fp16 or fp32.",
                          f"未知的精度“{precision}”。请选择 bf16、fp16 或 fp32。")
    if optimizer not in OPTIMIZERS:
        raise StudioError(f"Unknown optimizer '{optimizer}'. Choose {', '.join(OPTIMIZERS)}.",
                          f"未知的优化器“{optimizer}”。请从 {'、'.join(OPTIMIZERS)} 中选择。")
    for nm, nm_zh, v, lo in (("batch size", "批量大小", batch_size, 1), ("sequence length", "序列长度", seq_len, 1),
                             ("gradient accumulation", "梯度累积", grad_accum, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise StudioError(f"The {nm} must be a whole number of at least {lo}, got {v!r}.",
                              f"{nm_zh}必须是不小于 {lo} 的整数，收到的是 {v!r}。")
    if method != "full" and (not isinstance(lora_rank, int) or lora_rank < 1):
        raise StudioError(f"The LoRA rank must be a whole number of at least 1, got {lora_rank!r}.",
                          f"LoRA 秩必须是不小于 1 的整数，收到的是 {lora_rank!r}。")
    if method == "qlora" and quant_bits not in (4, 8):
        raise StudioError("QLoRA stores the model in 4 or 8 bits; choose 4 or 8.",
                          "QLoRA 以 4 位或 8 位存储模型；请选择 4 或 8。")
    if loss not in LOSSES:
        raise StudioError(f"Unknown loss implementation '{loss}'. Choose {', '.join(LOSSES)}.",
                          f"未知的损失实现“{loss}”。请从 {'、'.join(LOSSES)} 中选择。")
    device = "cuda" if device in ("auto", "gpu") else device
    if device not in ("cuda", "mps", "cpu"):
        raise StudioError(f"Unknown device '{device}'. Choose cuda, mps or cpu.",
                          f"未知的设备“{device}”。请选择 cuda、mps 或 cpu。")
    if attention == "auto":
        attention = _MODEL_TYPES[dims.model_type][3]
    if attention not in ATTENTIONS:
        raise StudioError(f"Unknown attention implementation '{attention}'. Choose sdpa, flash or eager.",
                          f"未知的注意力实现“{attention}”。请选择 sdpa、flash 或 eager。")

    notes: list[str] = []
    L, h, V = dims.num_hidden_layers, dims.hidden_size, dims.vocab_size
    rows = batch_size * (2 if stage == "dpo" else 1)
    tokens = rows * seq_len
    if master_weights_fp32 is None:
        master_weights_fp32 = method == "full" and precision == "fp16"
    act_b = 4 if precision == "fp32" else 2  # activation bytes (compute dtype)
    use_autocast = autocast and precision != "fp32"
    P = dims.param_count
    non_linear = P - dims.linear_params  # embeddings, head, norms, biases

    # ---- weights, trainable parameters, gradients, optimizer states -----------------------------
    br: dict[str, float] = {k: 0.0 for k in BREAKDOWN_LABELS}
    lora_params = 0
    if method == "full":
        wb = 4 if (precision == "fp32" or master_weights_fp32) else 2
        br["weights"] = P * wb
        gb = wb
        trainable = P
        if master_weights_fp32:
            notes.append("Full fine-tuning keeps fp32 master weights; autocast keeps a 16-bit copy of each weight "
                         "through forward and backward.")
        else:
            notes.append("Full fine-tuning in pure " + ("fp32" if wb == 4 else "bf16") +
                         ": weights, gradients and AdamW states all in the loaded dtype (HF Trainer with bf16=True).")
    else:
        base_b = 4 if precision == "fp32" else 2
        if method == "qlora":
            if quant_bits == 4:
                per = 0.5 + (1 / 64 + 4 / (64 * 256) if double_quant else 4 / 64)
                notes.append(f"QLoRA NF4{' with double quantization' if double_quant else ''}: "
                             f"{per:.3f} bytes per linear weight; embeddings, output head and norms stay "
                             f"{'fp32' if upcast_non_quantized else '16-bit'}.")
                qweights = dims.linear_params * per
            else:
                qweights = dims.linear_params * 1.0 + L * sum(o for _, o in dims.modules().values()) * 4
                notes.append("8-bit (LLM.int8) base: 1 byte per linear weight plus one fp32 scale per row.")
            br["weights"] = qweights + non_linear * (4 if upcast_non_quantized else base_b)
        else:
            br["weights"] = P * base_b
        lora_params = lora_param_count(dims, lora_rank, target_modules)
        ldt = lora_dtype if lora_dtype != "auto" else ("bf16" if method == "qlora" and precision != "fp32" else "fp32")
        gb = 4 if ldt == "fp32" else 2
        br["trainable"] = lora_params * gb
        trainable = lora_params
        notes.append(f"LoRA rank {lora_rank} on {', '.join(resolve_target_modules(dims, target_modules))}: "
                     f"{lora_params:,} trainable parameters in {ldt}.")
    br["gradients"] = trainable * gb
    if optimizer == "sgd":
        opt_b = 0.0
    elif optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        opt_b = 2.0 + 8 / 2048  # two 8-bit states + one fp32 absmax per 2048-value block each
    else:
        opt_b = 2 * gb
    br["optimizer"] = trainable * opt_b
    if optimizer == "paged_adamw_8bit":
        notes.append("Paged optimizer states can spill to CPU memory when the GPU runs short.")

    # ---- activations --------------------------------------------------------------------------
    padding_mask_arg = padding_mask
    if padding_mask is None:  # rows of different lengths in one batch are padded and masked
        padding_mask = rows > 1 and not packing
    per_layer, layer_bwd = _layer_activation_bytes(dims, method, act_b, attention, seq_len, padding_mask,
                                                   target_modules, lora_rank, lora_dropout, use_autocast, ldt_bytes=gb,
                                                   mask_bytes=1 if device == "cuda" else 4,
                                                   saves_inputs=method == "full" or (method == "qlora" and quant_saves_inputs))
    mask = 0.0
    if attention != "flash" and padding_mask:
        mask = rows * seq_len * seq_len  # bool 4-D padding mask, shared by all layers
    if gradient_checkpointing:
        resident = L * tokens * h * act_b  # each layer's input, kept to recompute it
        recompute = tokens * (per_layer + layer_bwd)
    else:
        resident = L * tokens * per_layer
        recompute = tokens * layer_bwd
    rope = 2 * rows * seq_len * dims.head_size * act_b

    # ---- logits / loss ---------------------------------------------------------------------------
    head_trainable = method == "full"
    if loss == "fused":
        tile = min(tokens, _FUSED_TILE[0]) * min(V, _FUSED_TILE[1]) * act_b
        logits = 2 * tile + tokens * h * (act_b + 4)
        if head_trainable:
            logits += V * h * 4  # fp32 gradient accumulator of the output head
    else:
        logits = tokens * V * _LOSS_BYTES_PER_LOGIT[loss] * (2 if (act_b == 4 and loss == "hf_bf16") else 1)
        if act_b == 4 and loss == "chunked":
            logits *= 2

    # Forward/backward peak: activations + the larger of (loss head, one layer's recompute).
    if gradient_checkpointing:
        act_peak = resident + max(logits, recompute) + mask + rope
        logit_share = logits if logits >= recompute else 0.0
    else:
        act_peak = resident + logits + recompute + mask + rope
        logit_share = logits
    autocast_cache = dims.linear_params * 2 if (method == "full" and master_weights_fp32 and use_autocast) else 0
    if method == "qlora":  # one dequantized weight at a time
        autocast_cache += max(a * b for a, b in dims.modules().values()) * act_b
    # Full fine-tuning: gradients live during forward when they accumulate over micro-batches,
    # otherwise the head's gradient (computed first) is alive at the backward's start.
    grads_in_fwd = br["gradients"] if (method == "full" and grad_accum > 1) else (
        (dims.head_params or dims.embedding_params) * gb if method == "full" else 0)
    static = br["weights"] + br["trainable"] + br["optimizer"]
    peak_fwd = static + grads_in_fwd + act_peak + autocast_cache
    peak_step = static + br["gradients"]  # end of backward / optimizer step: activations are gone
    if peak_fwd >= peak_step:
        br["gradients"] = grads_in_fwd if method == "full" else br["gradients"]
        br["activations"] = act_peak - logit_share + autocast_cache
        br["logits"] = logit_share
    else:
        br["activations"] = 0.0
        br["logits"] = 0.0
    allocated = sum(br.values())

    # ---- runtime overhead ------------------------------------------------------------------------
    if device == "cuda":
        ctx = 0.5 * GiB if cuda_context_bytes is None else cuda_context_bytes
        slack = 0.10 if allocator_slack is None else allocator_slack  # reserved vs allocated at the peak
        br["overhead"] = ctx + slack * allocated
        notes.append("Runtime overhead: CUDA context and the caching allocator's slack.")
    else:
        # A Python process with torch, transformers and the dataset loaded, plus glibc/Metal allocator slack.
        base = 1.0 * GiB if cuda_context_bytes is None else cuda_context_bytes
        slack = 0.25 if allocator_slack is None else allocator_slack
        br["overhead"] = base + slack * allocated
        notes.append(f"{'RAM' if device == 'cpu' else 'Unified memory'}: includes the Python process "
                     "(torch, transformers, data) and the allocator's slack.")
    if gradient_checkpointing:
        notes.append("Gradient checkpointing: one layer's activations at a time, each layer's input kept.")
    if loss == "fused":
        notes.append("Loss computed in chunks without full logits (TRL's default for SFT and DPO).")
    elif loss in ("hf", "hf_legacy"):
        notes.append("Loss over full logits with an fp32 upcast (Hugging Face models); TRL's chunked loss needs less.")
    if stage == "dpo":
        notes.append("DPO: each row is a chosen and a rejected answer, so twice the rows.")
    if packing:
        notes.append("Packing: every row is filled to the full sequence length, so this peak is reached every step.")

    breakdown = {k: int(round(v)) for k, v in br.items()}
    setup = dict(method=method, batch_size=batch_size, seq_len=seq_len, gradient_checkpointing=gradient_checkpointing,
                 precision=precision, optimizer=optimizer, lora_rank=lora_rank,
                 target_modules=target_modules if isinstance(target_modules, str) else ",".join(target_modules),
                 lora_dropout=lora_dropout, quant_bits=quant_bits, grad_accum=grad_accum, packing=packing,
                 stage=stage, device=device, attention=attention, loss=loss, padding_mask=padding_mask_arg)
    return Estimate(total_bytes=sum(breakdown.values()), breakdown=breakdown, allocated_bytes=int(round(allocated)),
                    device=device, capacity_bytes=int(capacity_bytes) if capacity_bytes else None, param_count=P,
                    trainable_params=trainable, setup=setup, assumptions=notes)


def _layer_activation_bytes(dims: ModelDims, method: str, a: int, attention: str, seq_len: int,
                            padding_mask: bool, target_modules, rank: int, dropout: float, autocast: bool,
                            ldt_bytes: int, mask_bytes: int = 1, saves_inputs: bool = False) -> tuple[float, float]:
    """(saved bytes per token for one decoder layer, extra bytes per token while backpropagating it)."""
    h, i, qd, kvd = dims.hidden_size, dims.intermediate_size, dims.q_dim, dims.kv_dim
    heads = dims.num_attention_heads
    norms = dims.norms_per_layer * 4 * h  # RMSNorm saves its fp32-upcast input
    repeat_kv = attention == "eager" or (attention == "sdpa" and padding_mask and kvd != qd)
    k_saved = qd if repeat_kv else kvd
    attn = a * (2 * qd + 2 * k_saved)  # q and output; k and v (repeated for eager or a masked SDPA)
    if attention == "eager":
        attn += heads * seq_len * (4 + a)  # fp32 softmax and its 16-bit cast, per query token
        attn += a * qd  # transposed output copy
    else:
        attn += heads * 4  # log-sum-exp
    mlp = 3 * a * i  # gate, up, act(gate)
    per = norms + attn + mlp
    if method == "full":  # the norm weights' gradients need their (16-bit) inputs
        per += dims.norms_per_layer * a * h
    if saves_inputs:  # every linear keeps its input: normed hidden (shared by q/k/v, by gate/up), down_proj's
        per += 2 * a * h + a * i  # o_proj's input is the attention output, already counted
    if method != "full":
        mods = dims.modules()
        for m in resolve_target_modules(dims, target_modules):
            fan_in = mods[m][0]
            copy_b = a if autocast else ldt_bytes
            per += fan_in * copy_b + (fan_in * mask_bytes if dropout > 0 else 0) + rank * max(a, ldt_bytes)
    # While one layer is backpropagated: gradients of the MLP's intermediate tensors and of the hidden state.
    bwd = 2 * a * i + 2 * 4 * h
    return float(per), float(bwd)


# --------------------------------------------------------------------------------------------
# For the engine: one call per run
# --------------------------------------------------------------------------------------------

def engine_loss() -> str:
    """The loss head our engine's trainer uses: "fused" when the installed TRL computes log-probabilities in
    chunks (TRL >= 1.0), else "hf". Read from the installed version, not from what happens to be imported,
    so the same settings give the same estimate everywhere (CLI, tabs, engine)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        major = int(version("trl").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return "hf"
    return "fused" if major >= 1 else "hf"


def estimate_for_run(cfg: Any, dims: ModelDims, *, device: str | None = None, capacity_bytes: int | None = None,
                     precision: str | None = None, gradient_checkpointing: bool | None = None,
                     loss: str | None = None) -> Estimate:
    """The estimate for a `RunConfig` (or its dict): what the engine records as `estimated_memory_bytes`.

    Pass the resolved device/precision/checkpointing when the config says 'auto'. loss None = what the
    installed TRL does (see engine_loss()).
    """
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    m, t = d.get("method", {}), d.get("training", {})
    dev = device or t.get("device", "auto")
    if dev == "auto":
        from studio import hardware

        hw = hardware.detect()
        dev = "cuda" if hw.get("cuda") else ("mps" if hw.get("mps") else "cpu")
        if capacity_bytes is None:
            capacity_bytes = hardware.capacity_bytes(hw, dev)
    prec = precision or t.get("precision", "auto")
    if prec == "auto":
        prec = "bf16" if dev != "cpu" else "fp32"
    gc = gradient_checkpointing
    if gc is None:
        v = str(t.get("gradient_checkpointing", "auto")).lower()
        gc = v in ("true", "on", "1", "auto")
    stage = t.get("stage", "sft")
    est = estimate(dims, m.get("method", "lora"), batch_size=int(t.get("batch_size", 1)),
                    seq_len=int(t.get("max_length", 512)), gradient_checkpointing=gc, precision=prec,
                    optimizer=t.get("optimizer", "adamw") if t.get("optimizer") in OPTIMIZERS else "adamw",
                    lora_rank=int(m.get("lora_rank", 8)), target_modules=m.get("target_modules", "all-linear"),
                    lora_dropout=float(m.get("lora_dropout", 0.05)), quant_bits=int(m.get("quant_bits", 4)),
                    grad_accum=int(t.get("grad_accum", 1)), packing=bool(t.get("packing", False)) or stage == "cpt",
                    stage=stage, device=dev, capacity_bytes=capacity_bytes, loss=loss or engine_loss())
    if est.capacity_bytes and est.verdict != "fits":
        try:
            from studio.models import catalog

            est.recommendations = [r.text for r in recommendations(dims, est, catalog_models=catalog.load())]
        except StudioError:
            pass
    return est


# --------------------------------------------------------------------------------------------
# What to change to make it fit
# --------------------------------------------------------------------------------------------

@dataclass
class Recommendation:
    text: str  # "turn on gradient checkpointing: 31.2 GiB -> 19.5 GiB, fits"
    change: dict[str, Any]  # keyword arguments of estimate() to apply (model: a catalog id)
    total_bytes: int
    fits: bool
    verdict: str
    cost: str  # what it costs in quality or speed, one short phrase

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rerun(dims: ModelDims, est: Estimate, change: dict, extra: dict) -> Estimate:
    kw = {k: v for k, v in est.setup.items()}
    kw.update(extra)
    kw.update({k: v for k, v in change.items() if k != "model"})
    method = kw.pop("method")
    return estimate(dims, method, capacity_bytes=est.capacity_bytes, **kw)


def recommendations(dims: ModelDims, est: Estimate, *, catalog_models: list | None = None,
                    extra: dict | None = None, include_when_fits: bool = False) -> list[Recommendation]:
    """Changes ranked by how little they cost in quality and speed, each with its own recomputed estimate.

    Empty when the setup already fits (unless include_when_fits) or when no device size is known.
    `extra`: keyword arguments of estimate() that are not in est.setup (e.g. cuda_context_bytes).
    """
    if not est.capacity_bytes or (est.fits and est.verdict == "fits" and not include_when_fits):
        return []
    extra = dict(extra or {})
    s = est.setup
    cands: list[tuple[str, dict, str]] = []
    if not s["gradient_checkpointing"]:
        cands.append(("turn on gradient checkpointing", {"gradient_checkpointing": True}, "about 20-30% slower, same quality"))
    if s["batch_size"] > 1:
        cands.append((f"batch size 1 with gradient accumulation {s['batch_size'] * s['grad_accum']}",
                      {"batch_size": 1, "grad_accum": s["batch_size"] * s["grad_accum"]}, "slower steps, same quality"))
    if s["method"] == "full" and s["optimizer"] == "adamw" and est.device == "cuda":  # bitsandbytes: NVIDIA only
        cands.append(("use the 8-bit AdamW optimizer", {"optimizer": "adamw_8bit"}, "slightly less precise updates"))
    if s["seq_len"] > 256:
        new = max(256, s["seq_len"] // 2)
        cands.append((f"shorter sequences ({s['seq_len']} -> {new} tokens)", {"seq_len": new},
                      "longer rows are cut; check the token-length histogram"))
    if s["method"] == "full":
        cands.append(("train a LoRA adapter instead of all weights", {"method": "lora"}, "learns less than full fine-tuning"))
    if s["method"] in ("lora", "full"):
        cands.append(("use QLoRA (4-bit base model)", {"method": "qlora", "quant_bits": 4}, "about 30% slower, slightly lower quality"))
    if s["method"] == "qlora" and s.get("quant_bits") == 8:
        cands.append(("store the base model in 4 bits", {"quant_bits": 4}, "slightly lower quality"))
    recs: list[Recommendation] = []
    for label, change, cost in cands:
        try:
            new = _rerun(dims, est, change, extra)
        except StudioError:
            continue
        if new.total_bytes >= est.total_bytes:
            continue
        recs.append(_rec(label, change, est, new, cost))
    if recs and not any(r.fits for r in recs):
        combo: dict[str, Any] = {}
        for r in recs:
            combo.update(r.change)
        new = _rerun(dims, est, combo, extra)
        recs.append(_rec("all of the above together", combo, est, new, "the costs of each"))
    if catalog_models is not None:
        best = largest_fitting_model(catalog_models, est.capacity_bytes, {**est.setup, **extra}, smaller_than=dims.param_count)
        if best is not None:
            entry, new = best
            recs.append(_rec(f"a smaller model: {entry.id}", {"model": entry.id}, est, new, "a smaller model knows less"))
    return recs


def _rec(label: str, change: dict, old: Estimate, new: Estimate, cost: str) -> Recommendation:
    text = f"{label}: {old.total_gib:.1f} GiB -> {new.total_gib:.1f} GiB, {new.verdict}"
    return Recommendation(text=text, change=change, total_bytes=new.total_bytes, fits=bool(new.fits),
                          verdict=new.verdict or "", cost=cost)


def largest_fitting_model(catalog_models: list, capacity_bytes: int, setup: dict, *,
                          smaller_than: int | None = None) -> tuple[Any, Estimate] | None:
    """The catalog model with the most parameters whose estimate fits `capacity_bytes` with this setup.

    catalog_models: entries with `.id` and `.dims` (studio.models.catalog.CatalogEntry).
    """
    kw = dict(setup)
    method = kw.pop("method", "lora")
    kw.pop("capacity_bytes", None)
    best = None
    for entry in catalog_models:
        d = entry.dims
        if smaller_than is not None and d.param_count >= smaller_than:
            continue
        try:
            e = estimate(d, method, capacity_bytes=capacity_bytes, **kw)
        except StudioError:
            continue
        if e.fits and (best is None or d.param_count > best[0].dims.param_count):
            best = (entry, e)
    return best


# --------------------------------------------------------------------------------------------
# Chart for the Model tab
# --------------------------------------------------------------------------------------------

_COLORS = {"weights": "#4C78A8", "trainable": "#72B7B2", "gradients": "#F58518", "optimizer": "#E45756",
           "activations": "#54A24B", "logits": "#EECA3B", "overhead": "#9D755D"}


def breakdown_figure(est: Estimate, lang: str = "en", title: str | None = None):
    """A plotly stacked horizontal bar of the breakdown, with the device's capacity and its 90% line."""
    import plotly.graph_objects as go

    zh = lang == "zh"
    fig = go.Figure()
    for key, value in est.breakdown.items():
        if value <= 0:
            continue
        label = BREAKDOWN_LABELS[key][1 if zh else 0]
        fig.add_trace(go.Bar(y=["估计" if zh else "Estimate"], x=[value / GiB], name=label, orientation="h",
                             marker_color=_COLORS.get(key), hovertemplate=f"{label}: %{{x:.2f}} GiB<extra></extra>"))
    if est.capacity_bytes:
        cap = est.capacity_bytes / GiB
        fig.add_vline(x=cap, line_color="black", line_width=2,
                      annotation_text=("设备内存" if zh else "device") + f" {cap:.0f} GiB", annotation_position="top")
        fig.add_vline(x=cap * FIT_SHARE, line_dash="dash", line_color="gray",
                      annotation_text="90%", annotation_position="bottom")
    fig.update_layout(barmode="stack", height=220, margin=dict(l=10, r=10, t=40, b=10),
                      title=title or (f"{'峰值' if zh else 'Peak'} {est.total_gib:.1f} GiB"
                                      + (f" · {est.verdict}" if est.verdict and not zh else "")),
                      xaxis_title="GiB", legend=dict(orientation="h", y=-0.4))
    return fig


def format_bytes(n: float) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"


def fmt_table(est: Estimate) -> str:
    """The breakdown as plain text lines (CLI)."""
    lines = []
    for k, v in est.breakdown.items():
        if v:
            lines.append(f"  {BREAKDOWN_LABELS[k][0]:<30} {format_bytes(v):>10}")
    lines.append(f"  {'Total':<30} {format_bytes(est.total_bytes):>10}")
    return "\n".join(lines)


__all__ = ["ModelDims", "Estimate", "Recommendation", "dims_from_config", "estimate", "estimate_for_run", "engine_loss",
           "recommendations", "largest_fitting_model", "breakdown_figure", "lora_param_count",
           "resolve_target_modules", "BREAKDOWN_LABELS", "GiB"]
