"""Peak training memory of one setup from a model's dimensions: pure arithmetic, no torch, no weights.

`estimate(dims, method, ...)` takes every decision as an argument; `studio.plan` makes those decisions
for a run (device, precision, gradient checkpointing, packing) and is what every screen shows.

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

from dataclasses import dataclass, field
from typing import Any, Iterable

from studio.errors import StudioError
from studio.messages import Msg
from studio.models.dims import _MODEL_TYPES, ModelDims, lora_param_count, resolve_target_modules


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
    assumptions: list[Msg] = field(default_factory=list)  # what was assumed, one sentence each

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

    def to_dict(self) -> dict[str, Any]:
        return {"total_bytes": int(self.total_bytes), "total_gib": round(self.total_gib, 2),
                "allocated_bytes": int(self.allocated_bytes), "breakdown": {k: int(v) for k, v in self.breakdown.items()},
                "device": self.device, "capacity_bytes": self.capacity_bytes, "fits": self.fits,
                "verdict": self.verdict, "param_count": self.param_count, "trainable_params": self.trainable_params,
                "setup": dict(self.setup), "assumptions": [str(a) for a in self.assumptions]}


# The parts of the peak, in the order shown; their names are the catalog ids memory.part.<part>.
BREAKDOWN_PARTS = ("weights", "trainable", "gradients", "optimizer", "activations", "logits", "overhead")


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
        raise StudioError("memory.error.method", value=method)
    if precision in ("auto", "bfloat16"):
        precision = "bf16"
    if precision not in PRECISIONS:
        raise StudioError("memory.error.precision", value=precision)
    if optimizer not in OPTIMIZERS:
        raise StudioError("memory.error.optimizer", value=optimizer, choices=list(OPTIMIZERS))
    for what, v in (("batch_size", batch_size), ("seq_len", seq_len), ("grad_accum", grad_accum)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise StudioError(f"memory.error.{what}", value=repr(v))
    if method != "full" and (not isinstance(lora_rank, int) or lora_rank < 1):
        raise StudioError("memory.error.lora_rank", value=repr(lora_rank))
    if method == "qlora" and quant_bits not in (4, 8):
        raise StudioError("memory.error.quant_bits")
    if loss not in LOSSES:
        raise StudioError("memory.error.loss", value=loss, choices=list(LOSSES))
    device = "cuda" if device in ("auto", "gpu") else device
    if device not in ("cuda", "mps", "cpu"):
        raise StudioError("memory.error.device", value=device)
    if attention == "auto":
        attention = _MODEL_TYPES[dims.model_type][3]
    if attention not in ATTENTIONS:
        raise StudioError("memory.error.attention", value=attention)

    notes: list[Msg] = []
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
    br: dict[str, float] = {k: 0.0 for k in BREAKDOWN_PARTS}
    lora_params = 0
    if method == "full":
        wb = 4 if (precision == "fp32" or master_weights_fp32) else 2
        br["weights"] = P * wb
        gb = wb
        trainable = P
        if master_weights_fp32:
            notes.append(Msg("memory.note.master_weights"))
        else:
            notes.append(Msg("memory.note.pure_dtype", dtype="fp32" if wb == 4 else "bf16"))
    else:
        base_b = 4 if precision == "fp32" else 2
        if method == "qlora":
            if quant_bits == 4:
                per = 0.5 + (1 / 64 + 4 / (64 * 256) if double_quant else 4 / 64)
                notes.append(Msg("memory.note.nf4_double" if double_quant else "memory.note.nf4", per=per,
                                 dtype="fp32" if upcast_non_quantized else "16-bit"))
                qweights = dims.linear_params * per
            else:
                qweights = dims.linear_params * 1.0 + L * sum(o for _, o in dims.modules().values()) * 4
                notes.append(Msg("memory.note.int8"))
            br["weights"] = qweights + non_linear * (4 if upcast_non_quantized else base_b)
        else:
            br["weights"] = P * base_b
        lora_params = lora_param_count(dims, lora_rank, target_modules)
        ldt = lora_dtype if lora_dtype != "auto" else ("bf16" if method == "qlora" and precision != "fp32" else "fp32")
        gb = 4 if ldt == "fp32" else 2
        br["trainable"] = lora_params * gb
        trainable = lora_params
        notes.append(Msg("memory.note.lora", rank=lora_rank, modules=resolve_target_modules(dims, target_modules),
                         params=lora_params, dtype=ldt))
    br["gradients"] = trainable * gb
    if optimizer == "sgd":
        opt_b = 0.0
    elif optimizer in ("adamw_8bit", "paged_adamw_8bit"):
        opt_b = 2.0 + 8 / 2048  # two 8-bit states + one fp32 absmax per 2048-value block each
    else:
        opt_b = 2 * gb
    br["optimizer"] = trainable * opt_b
    if optimizer == "paged_adamw_8bit":
        notes.append(Msg("memory.note.paged"))

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
        notes.append(Msg("memory.note.cuda_overhead"))
    else:
        # A Python process with torch, transformers and the dataset loaded, plus glibc/Metal allocator slack.
        base = 1.0 * GiB if cuda_context_bytes is None else cuda_context_bytes
        slack = 0.25 if allocator_slack is None else allocator_slack
        br["overhead"] = base + slack * allocated
        notes.append(Msg("memory.note.ram_overhead" if device == "cpu" else "memory.note.unified_overhead"))
    if gradient_checkpointing:
        notes.append(Msg("memory.note.checkpointing"))
    if loss == "fused":
        notes.append(Msg("memory.note.fused_loss"))
    elif loss in ("hf", "hf_legacy"):
        notes.append(Msg("memory.note.hf_loss"))
    if stage == "dpo":
        notes.append(Msg("memory.note.dpo"))
    if packing:
        notes.append(Msg("memory.note.packing"))

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
