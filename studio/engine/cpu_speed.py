"""What makes LoRA training faster on a CPU, each lever kept because `benchmarks/throughput.py` showed it
with the loss on answers unchanged (figures in benchmarks/RESULTS.md):

- the loss computed on answer tokens only (`AnswerLossTrainer`): TRL's fused LM head scores only the
  labelled positions on GPUs, but on other devices it scores every position (fixed tile shapes) and
  runs its backward matmuls in fp32; a quarter of a step on the embedded model. Here the backbone's
  hidden states at the answer positions go through the LM head in token chunks in the autocast dtype,
  with no [tokens, vocabulary] logits kept (each chunk is recomputed in the backward, as TRL does);
- LoRA dropout from 16-bit random fields (`FastDropout`): torch's dropout draws one random number per
  element with `bernoulli_`, which was 18% of a training step on the embedded model (210 LoRA layers,
  each dropping its own copy of the input); three 16-bit fields per 64-bit random number cut that
  4-8x, with the same probability to 1/65,536;
- the attention kernel chosen per batch by its length (`attention_by_length`): for batches of up to
  `SHORT_ATTENTION_TOKENS` tokens plain ("eager") attention is faster than PyTorch's fused CPU kernel
  (2.4x at 80 tokens, even at 256); above that the fused kernel wins (2.6x at 1,024) and is kept;
- one compute thread per physical core this process may use (`training_threads`): a container's CPU
  quota (a free Space) is often a few cores of a large host, and more threads than that only contend.

Not kept (measured, see RESULTS.md): base weights held in bf16 (autocast casts them already; no gain),
`torch.compile` (minutes of compiling on 2 cores, more than a first run lasts), padding-free packing (on a
CPU the attention then spans the whole packed row). Nothing here runs on a GPU.
"""

from __future__ import annotations

import os
import sys

SHORT_ATTENTION_TOKENS = 256  # at or under this many tokens a batch uses plain attention on a CPU


def attention_for_plan(device: str, max_length: int) -> str:
    """The attention the memory estimate counts: plain attention when every batch is short enough to
    use it on a CPU, else the model's own default ("auto")."""
    return "eager" if device == "cpu" and 0 < max_length <= SHORT_ATTENTION_TOKENS else "auto"


def training_threads() -> int:
    """Compute threads for training: the physical cores this process may run on, within the
    container's CPU quota (cgroup v2 `cpu.max`, or v1's quota and period)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or allowed
        logical = psutil.cpu_count(logical=True) or allowed
        allowed = max(1, allowed * physical // logical)  # hyper-threads share one core's arithmetic units
    except Exception:
        pass
    quota = _cgroup_cpu_quota()
    if quota:
        allowed = min(allowed, max(1, int(quota + 0.5)))
    return max(1, allowed)


def _cgroup_cpu_quota() -> float | None:
    from pathlib import Path

    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _fast_dropout_class():
    import torch

    class FastDropout(torch.nn.Module):
        """Dropout with probability p, drawn from 16-bit random fields: three fields per 64-bit random
        number (the top one is left out: torch's int64 `random_` never sets the sign bit)."""

        def __init__(self, p: float):
            super().__init__()
            self.p = float(p)
            self.cut = round(self.p * 65536) - 32768  # a field below this is dropped: probability p

        def forward(self, x):
            if not self.training or self.p <= 0:
                return x
            n = x.numel()
            m = -(-n // 3)
            bits = torch.empty(m, dtype=torch.int64, device=x.device).random_()
            fields = bits.view(torch.int16).view(m, 4)
            fields = fields[:, :3] if sys.byteorder == "little" else fields[:, 1:]
            drop = (fields < self.cut).reshape(-1)[:n].view(x.shape)
            return x.masked_fill(drop, 0).mul_(1.0 / (1.0 - self.p))

        def extra_repr(self) -> str:
            return f"p={self.p}"

    return FastDropout


def use_fast_dropout(model) -> int:
    """Replace the LoRA layers' dropout with FastDropout (same p); returns how many were replaced."""
    import torch

    fast = _fast_dropout_class()
    replaced = 0
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, torch.nn.ModuleDict):
            continue
        for name, drop in list(drops.items()):
            if type(drop) is torch.nn.Dropout and drop.p > 0:
                drops[name] = fast(drop.p)
                replaced += 1
    return replaced


def attention_by_length(model, short: int = SHORT_ATTENTION_TOKENS):
    """Before each forward pass, plain attention for a batch of at most `short` tokens, the model's own
    kernel above that. Returns the hook's handle (`.remove()` undoes it)."""
    config = model.config
    default = config._attn_implementation or "sdpa"
    if default not in ("sdpa", "eager"):
        return None  # a kernel chosen on purpose (flash, flex): left alone

    def choose(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is None:
            ids = args[0] if args else kwargs.get("inputs_embeds")
        if ids is None:
            return None
        wanted = "eager" if ids.shape[1] <= short else default
        if config._attn_implementation != wanted:
            config._attn_implementation = wanted
        return None

    return model.register_forward_pre_hook(choose, with_kwargs=True)


def matmul_flops(bf16: bool) -> float:
    """FLOP/s of this processor on a training-sized matrix product (2048x576 by 576x1536) in bf16 (or fp32)
    with the training thread count: what the run plan turns into a duration before any run of a model was
    measured here. Measured once per process (about a quarter of a second); the best figure seen on this
    machine is kept in STUDIO_HOME, since a busy moment can only lower it."""
    import json
    import platform
    import time

    import torch

    from studio.files import atomic_write_text
    from studio.paths import studio_home

    threads = training_threads()
    key = f"{platform.machine()} {_cpu_model()} | {threads} threads | {'bf16' if bf16 else 'fp32'} | torch {torch.__version__}"
    if key in _MEASURED:
        return _MEASURED[key]
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(2048, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a @ b
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(4):
                a @ b
            best = min(best, (time.perf_counter() - t0) / 4)
    finally:
        torch.set_num_threads(before)
    measured = 2 * 2048 * 576 * 1536 / best
    store = studio_home() / "machine_speed.json"
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    _MEASURED[key] = max(measured, float(known.get(key) or 0.0))
    if measured > float(known.get(key) or 0.0):
        try:
            atomic_write_text(store, json.dumps({**known, key: measured}, indent=1))
        except OSError:
            pass
    return _MEASURED[key]


_MEASURED: dict[str, float] = {}


def _cpu_model() -> str:
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def plain_lm_head(model) -> bool:
    """True when the model's logits are plainly `lm_head(hidden)`: no soft-capping or logit scaling in its
    forward (Gemma 2, Cohere, Granite... do that), so the answer-only loss may apply the head itself."""
    if model.get_output_embeddings() is None or getattr(model, "base_model", model) is model:
        return False  # no separate backbone and head to call one after the other
    if model.config.get_text_config() is not model.config:
        return False  # a multimodal model: its forward does more than backbone then head
    scaled = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")
    return all(getattr(model.config, name, None) in (None, 1, 1.0) for name in scaled)


LOSS_CHUNK_ELEMENTS = 2 ** 24  # logits per chunk of the answer-only loss (64 MiB in fp32)


def _answer_logprob_function():
    import torch

    class AnswerLogProbs(torch.autograd.Function):
        """log p(target) for each row of `hidden` under `hidden @ weight.T`, in chunks of tokens; returns
        (log-probabilities, whether the target is the top prediction). Backward recomputes each chunk."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, dtype):
            chunk = max(1, LOSS_CHUNK_ELEMENTS // weight.shape[0])
            w = weight.to(dtype)
            lse = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
            picked = torch.empty_like(lse)
            top1 = torch.empty(hidden.shape[0], dtype=torch.bool, device=hidden.device)
            for s in range(0, hidden.shape[0], chunk):
                logits = _logits(hidden[s:s + chunk], w, bias, dtype)
                lse[s:s + chunk] = logits.logsumexp(-1)
                picked[s:s + chunk] = logits.gather(1, targets[s:s + chunk, None])[:, 0]
                top1[s:s + chunk] = logits.argmax(-1) == targets[s:s + chunk]
            ctx.save_for_backward(hidden, weight, bias, targets, lse)
            ctx.dtype, ctx.chunk = dtype, chunk
            ctx.mark_non_differentiable(top1)
            return picked - lse, top1

        @staticmethod
        def backward(ctx, grad, _):
            hidden, weight, bias, targets, lse = ctx.saved_tensors
            dtype, chunk = ctx.dtype, ctx.chunk
            w = weight.to(dtype)
            grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
            grad_weight = torch.zeros(weight.shape, dtype=torch.float32) if ctx.needs_input_grad[1] else None
            grad_bias = torch.zeros(weight.shape[0], dtype=torch.float32) if ctx.needs_input_grad[2] else None
            rows = torch.arange(min(chunk, hidden.shape[0]))
            for s in range(0, hidden.shape[0], chunk):
                h, g = hidden[s:s + chunk], grad[s:s + chunk]
                # d log p_t / d z_j = 1[j = t] - p_j
                d = torch.exp(_logits(h, w, bias, dtype) - lse[s:s + chunk, None]).mul_(-g[:, None])
                d[rows[:len(h)], targets[s:s + chunk]] += g
                d = d.to(dtype)
                if grad_hidden is not None:
                    grad_hidden[s:s + chunk] = (d @ w).to(hidden.dtype)
                if grad_weight is not None:
                    grad_weight += (d.t() @ h.to(dtype)).float()
                if grad_bias is not None:
                    grad_bias += d.float().sum(0)
            return (grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None,
                    grad_bias.to(bias.dtype) if grad_bias is not None else None, None, None)

    def _logits(h, w, bias, dtype):
        z = h.to(dtype) @ w.t()
        if bias is not None:
            z = z + bias.to(dtype)
        return z.float()

    return AnswerLogProbs


def answer_loss(trainer, model, inputs: dict, num_items_in_batch=None):
    """What TRL's `SFTTrainer.compute_loss` returns (the mean loss per answer token, or the sum over
    `num_items_in_batch` under gradient accumulation) and the token count it logs, with the LM head applied
    to the answer positions only."""
    import torch

    mode = "train" if model.training else "eval"
    causal = trainer.accelerator.unwrap_model(model)
    causal = causal.get_base_model() if hasattr(causal, "get_base_model") else causal
    head = causal.get_output_embeddings()
    features = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
    with trainer.accelerator.autocast():
        hidden = causal.base_model(**features, use_cache=False).last_hidden_state
    dtype = torch.get_autocast_dtype("cpu") if trainer.args.bf16 else hidden.dtype
    targets = inputs["labels"][:, 1:]
    mask = targets != -100
    logprobs, top1 = _answer_logprob_function().apply(hidden[:, :-1][mask], head.weight, head.bias,
                                                      targets[mask], dtype)
    count = mask.sum()
    loss = -logprobs.sum() / (torch.as_tensor(num_items_in_batch) if num_items_in_batch is not None
                              else count).clamp(min=1)
    trainer._metrics[mode]["mean_token_accuracy"].append((top1.sum() / count).item() if count > 0 else 0.0)
    if mode == "train":
        if "attention_mask" in inputs:
            trainer._total_train_tokens += int(inputs["attention_mask"].sum())
        else:
            trainer._total_train_tokens += int(inputs["input_ids"].shape[1])
    trainer._metrics[mode]["num_tokens"] = [trainer._total_train_tokens]
    return loss


def answer_loss_trainer(base):
    """`base` (TRL's SFTTrainer) with `answer_loss` as its loss; anything asking for the logits too goes
    to TRL's own."""

    class AnswerLossTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return answer_loss(self, model, inputs, num_items_in_batch)

    return AnswerLossTrainer


def prepare(model) -> dict:
    """All levers on a model about to be trained on a CPU; returns what was done, for the run's log."""
    import torch

    threads = training_threads()
    torch.set_num_threads(threads)
    return {"threads": threads, "fast_dropout_layers": use_fast_dropout(model),
            "attention_by_length": attention_by_length(model) is not None}
