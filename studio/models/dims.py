"""A model's dimensions, named as in its config.json: what the memory estimate, the catalog and the run plan
need to know about a model without loading its weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from studio.errors import StudioError

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
                raise StudioError("dims.error.not_positive", field=f, value=repr(v))
        if self.model_type not in _MODEL_TYPES:
            raise StudioError("dims.error.architecture", value=self.model_type, known=sorted(_MODEL_TYPES))
        if self.num_attention_heads % self.num_key_value_heads:
            raise StudioError("dims.error.heads", heads=self.num_attention_heads, kv=self.num_key_value_heads)

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
            raise StudioError("dims.error.no_config", folder=str(p.parent))
        try:
            cfg = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudioError("dims.error.bad_json", path=str(p), error=type(e).__name__) from None
        if not isinstance(cfg, dict):
            raise StudioError("dims.error.not_object", path=str(p))
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
        raise StudioError("dims.error.no_type")
    if model_type not in _MODEL_TYPES:
        raise StudioError("dims.error.architecture", value=model_type, known=sorted(_MODEL_TYPES))
    if _first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0) and \
            _first(cfg, "num_local_experts", "num_experts", "n_routed_experts") > 1:
        raise StudioError("dims.error.moe", value=model_type)
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
        raise StudioError("dims.error.missing", fields=missing)
    try:
        ints = [int(x) for x in (hidden, layers, heads, kv, inter, vocab)]
        if any(float(x) != int(x) for x in (hidden, layers, heads, kv, inter, vocab)):
            raise ValueError
        head_dim = int(head_dim) if head_dim else None
    except (TypeError, ValueError):
        raise StudioError("dims.error.not_whole") from None
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
        raise StudioError("dims.error.targets", names=names, modules=mods)
    return chosen


def lora_param_count(dims: ModelDims, rank: int, target_modules="all-linear") -> int:
    mods = dims.modules()
    return dims.num_hidden_layers * sum(rank * (mods[m][0] + mods[m][1]) for m in resolve_target_modules(dims, target_modules))
