"""The run plan: what starting a run means, decided once, before anything is loaded.

    from studio.plan import plan
    p = plan(cfg, hardware.detect())            # or hardware.described_gpu(24) for "a 24 GiB GPU"
    p.total_bytes, p.verdict, p.gradient_checkpointing, p.recommendations, p.duration_s

Every screen and the trainer take their figures from this one object: the Model tab, the Train tab,
`studio estimate`, `studio train` and summary.json's `estimated_memory_bytes`. What it decides:
- where the run goes and in what precision (on a CPU the weights stay fp32 and bf16 is autocast only,
  so every weight counts 4 bytes);
- which memory is the capacity: the first GPU's total, or on a CPU the RAM this process can have;
- gradient checkpointing for "auto": on only when the run does not fit without it (it costs 20-30% speed);
- packing: CPT always; SFT on CUDA (padding-free, so every row is filled to the full length);
- the estimate and its verdict against 90% of the capacity, and what to change when it does not fit,
  each change planned again;
- trainable parameters; with a training file, rows, steps, tokens and a duration from this machine's
  measured speed where a run of the same model was measured (else a conservative assumption).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from studio import hardware, memory
from studio.config import RunConfig
from studio.engine.cpu_speed import attention_for_plan
from studio.errors import StudioError
from studio.memory import FIT_SHARE, Estimate, estimate, largest_fitting_model, recommendations
from studio.messages import Msg

QLORA_SHOWN_GPU_GIB = 24  # QLoRA needs CUDA: on a machine without, the plan is shown for a GPU of this size


@dataclass
class PlannedChange:
    """A change that makes the run fit, with the plan it gives."""

    kind: str  # gc | batch | optim | seq | lora | qlora | bits4 | all | model
    change: dict[str, Any]  # memory.estimate keyword arguments (seq_len, batch_size, ...) or model: a catalog id
    message: Msg  # "turn on gradient checkpointing: 31.2 GiB -> 19.5 GiB, fits"
    cost: Msg
    total_bytes: int
    verdict: str


@dataclass
class RunPlan:
    model: str
    stage: str
    method: str
    device: str  # cuda | mps | cpu
    precision: str  # the compute precision: bf16 | fp16 | fp32 (on a CPU, bf16 is autocast over fp32 weights)
    weights: str  # how the base weights are held: fp32 | bf16 | fp16 | nf4 | int8
    capacity_bytes: int | None
    where: Msg  # the device the verdict is for, in words
    gradient_checkpointing: bool
    gc_reason: Msg
    packing: bool
    estimate: Estimate | None = None
    error: StudioError | None = None  # why there is no estimate (a model whose dimensions are unknown)
    recommendations: list[PlannedChange] = field(default_factory=list)
    notes: list[Msg] = field(default_factory=list)
    rows: int | None = None
    eval_rows: int | None = None
    steps: int | None = None
    tokens: int | None = None
    tokens_per_second: float | None = None
    speed_basis: Msg | None = None
    duration_s: float | None = None

    @property
    def total_bytes(self) -> int | None:
        return int(self.estimate.total_bytes) if self.estimate else None

    @property
    def verdict(self) -> str | None:
        return self.estimate.verdict if self.estimate else None

    @property
    def fits(self) -> bool | None:
        return self.estimate.fits if self.estimate else None

    @property
    def trainable_params(self) -> int | None:
        return self.estimate.trainable_params if self.estimate else None

    @property
    def total_params(self) -> int | None:
        return self.estimate.param_count if self.estimate else None

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """JSON for the CLI, summary.json and tests: numbers as numbers, sentences in `lang` and as ids."""
        est = self.estimate
        return {
            "model": self.model, "stage": self.stage, "method": self.method, "device": self.device,
            "precision": self.precision, "weights": self.weights, "capacity_bytes": self.capacity_bytes,
            "where": self.where.text(lang), "gradient_checkpointing": self.gradient_checkpointing,
            "gradient_checkpointing_reason": self.gc_reason.text(lang), "packing": self.packing,
            "total_bytes": self.total_bytes, "allocated_bytes": int(est.allocated_bytes) if est else None,
            "breakdown": {k: int(v) for k, v in est.breakdown.items()} if est else {},
            "verdict": self.verdict, "fits": self.fits, "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "recommendations": [r.message.text(lang) for r in self.recommendations],
            "notes": [n.text(lang) for n in self.notes],
            "error": self.error.text(lang) if self.error else None,
            "rows": self.rows, "eval_rows": self.eval_rows, "steps": self.steps, "tokens": self.tokens,
            "tokens_per_second": self.tokens_per_second, "duration_s": self.duration_s,
        }


# ---- where and in what precision -----------------------------------------------------------------

def placement(device: str, precision: str, hw: dict) -> tuple[str, str, Msg]:
    """(device, compute precision, why) for the config's device/precision settings on this hardware.
    The same rule the trainer follows (studio.engine.device.choose asks this function)."""
    if device in ("auto", "", None):
        device = hardware.default_device(hw)
    if precision not in ("auto", "", None):
        return device, precision, Msg("plan.precision.as_set", precision=precision, device=device)
    if device == "cuda":
        gpus = hw.get("gpus") or [{}]
        if gpus[0].get("bf16", True):
            return device, "bf16", Msg("plan.precision.cuda_bf16")
        return device, "fp16", Msg("plan.precision.cuda_fp16")
    if device == "mps":
        return device, "fp32", Msg("plan.precision.mps")
    if hw.get("cpu_bf16"):
        return device, "bf16", Msg("plan.precision.cpu_bf16")
    return device, "fp32", Msg("plan.precision.cpu_fp32")


def _where(device: str, hw: dict) -> Msg:
    if device == "cuda":
        gpu = (hw.get("gpus") or [{}])[0]
        gib = (gpu.get("total_bytes") or 0) / 2**30
        return Msg("plan.where.gpu", name=gpu.get("name") or Msg("plan.where.a_gpu"), gib=gib)
    if device == "mps":
        return Msg("plan.where.mps", gib=(hardware.capacity_bytes(hw, "mps") or 0) / 2**30)
    return Msg("plan.where.cpu", gib=(hardware.capacity_bytes(hw, "cpu") or 0) / 2**30)


# ---- the plan ------------------------------------------------------------------------------------

def plan(cfg: RunConfig, hw: dict | None = None, *, with_recommendations: bool = True,
         with_duration: bool = True, tokens_per_second: float | None = None) -> RunPlan:
    """The plan for `cfg` on `hw` (hardware.detect() when None). Never raises for a model it cannot
    size: the plan then has `error` and no estimate. `tokens_per_second`: a speed measured for this run
    (a small trial, studio.engine.trial) instead of past runs' or the assumed one."""
    hw = hardware.detect() if hw is None else hw
    t, m = cfg.training, cfg.method
    notes: list[Msg] = []
    if m.method == "qlora" and not hw.get("cuda") and t.device in ("auto", "cuda"):
        hw = hardware.described_gpu(QLORA_SHOWN_GPU_GIB)
        notes.append(Msg("plan.note.qlora_no_cuda", gib=QLORA_SHOWN_GPU_GIB))
    device, precision, why_precision = placement(t.device, t.precision, hw)
    notes.append(why_precision)
    if device == "cuda":
        weights = {4: "nf4", 8: "int8"}[m.quant_bits] if m.method == "qlora" else precision
        est_precision = precision
    else:
        # The weights stay fp32 on a CPU or Apple GPU (bf16 is autocast only), and the estimator has no
        # "fp32 weights with 16-bit compute": count fp32, the safe side.
        weights, est_precision = "fp32", "fp32"
        if precision != "fp32":
            notes.append(Msg("plan.note.cpu_weights_fp32", precision=precision.upper()))
    if t.optimizer in ("adamw_8bit", "paged_adamw_8bit") and device != "cuda":
        notes.append(Msg("plan.note.optim_no_cuda"))
    if precision == "fp16" and device != "cuda":
        notes.append(Msg("plan.note.fp16_no_cuda"))
    capacity = hardware.capacity_bytes(hw, device)
    packing = t.stage == "cpt" or bool(t.packing) or (device == "cuda" and t.stage == "sft")
    p = RunPlan(model=cfg.model.name, stage=t.stage, method=m.method, device=device, precision=precision,
                weights=weights, capacity_bytes=capacity, where=_where(device, hw), gradient_checkpointing=False,
                gc_reason=Msg("plan.gc.off_as_set"), packing=packing, notes=notes)
    try:
        dims = _dims(cfg.model.name)
    except StudioError as e:
        p.error = e
        p.gradient_checkpointing, p.gc_reason = _gc_setting(t.gradient_checkpointing, None, capacity)
        return p
    kw = dict(batch_size=int(t.batch_size), seq_len=int(t.max_length), precision=est_precision,
              optimizer=t.optimizer, lora_rank=int(m.lora_rank), target_modules=m.target_modules or "all-linear",
              lora_dropout=float(m.lora_dropout), quant_bits=int(m.quant_bits), grad_accum=int(t.grad_accum),
              packing=packing, stage=t.stage, device=device, capacity_bytes=capacity, loss=memory.engine_loss(),
              attention=attention_for_plan(device, int(t.max_length)))
    try:
        without = estimate(dims, m.method, gradient_checkpointing=False, **kw)
        p.gradient_checkpointing, p.gc_reason = _gc_setting(t.gradient_checkpointing, without, capacity)
        p.estimate = estimate(dims, m.method, gradient_checkpointing=True, **kw) if p.gradient_checkpointing else without
    except StudioError as e:
        p.error = e
        return p
    if with_recommendations and p.estimate.capacity_bytes and p.verdict != "fits":
        p.recommendations = _planned_changes(cfg, hw, dims, p)
    if with_duration and cfg.data.train_file:
        from studio.plan_duration import add_duration

        add_duration(p, cfg, tokens_per_second)
    return p


def target_hardware(target: str | None, hw: dict | None = None) -> dict:
    """The hardware a plan is for: this machine ("auto"), or a GPU of that many GiB ("24")."""
    if target in ("", "auto", None):
        return hardware.detect() if hw is None else hw
    try:
        gib = float(target)
    except ValueError:
        raise StudioError("model.error.target", value=str(target)) from None
    return hardware.described_gpu(gib)


MIN_LENGTH = 128  # the shortest sequence length asked about: below it no cutoff is worth choosing


def longest_fitting_length(cfg: RunConfig, hw: dict | None = None, ceiling: int = 131072) -> int | None:
    """The longest sequence length (tokens per row) this run fits in memory with, per the plan, to a
    multiple of 64 (`ceiling` when even that fits); gradient checkpointing on "auto" is turned on where
    it is needed, as starting the run would. None when the plan cannot size the run (an unknown model,
    no known capacity) or when even MIN_LENGTH does not fit: then memory is no bound on the cutoff, and
    the Model tab says what to change."""
    hw = hardware.detect() if hw is None else hw
    probe = copy.deepcopy(cfg)

    def fits(n: int) -> bool | None:
        probe.training.max_length = n
        return plan(probe, hw, with_recommendations=False, with_duration=False).fits

    if not fits(MIN_LENGTH):  # False, or None when unknown
        return None
    if fits(ceiling):
        return ceiling
    lo, hi = MIN_LENGTH // 64, ceiling // 64  # in steps of 64 tokens: lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid * 64) else (lo, mid)
    return lo * 64


def _dims(name: str):
    from studio.models.catalog import resolve_dims

    return resolve_dims(name)[0]


def _gc_setting(setting: Any, without: Estimate | None, capacity: int | None) -> tuple[bool, Msg]:
    value = str(setting).lower()
    if value in ("true", "on", "1"):
        return True, Msg("plan.gc.on_as_set")
    if value in ("false", "off", "0"):
        return False, Msg("plan.gc.off_as_set")
    if without is None or not capacity:
        return False, Msg("plan.gc.off_unknown")
    if without.total_bytes > FIT_SHARE * capacity:
        return True, Msg("plan.gc.auto_on", gib=without.total_bytes / 2**30, capacity=capacity / 2**30)
    return False, Msg("plan.gc.auto_off")


# The memory.estimate keyword a change names -> where it lives in a RunConfig.
_CHANGE_FIELDS = {"gradient_checkpointing": ("training", "gradient_checkpointing"),
                  "batch_size": ("training", "batch_size"), "grad_accum": ("training", "grad_accum"),
                  "seq_len": ("training", "max_length"), "optimizer": ("training", "optimizer"),
                  "method": ("method", "method"), "quant_bits": ("method", "quant_bits")}


def apply_change(cfg: RunConfig, change: dict) -> RunConfig:
    """The config after a recommended change (memory.estimate keywords, or `model`: a catalog id)."""
    new = copy.deepcopy(cfg)
    for key, value in change.items():
        if key == "model":
            new.model.name = value
        elif key in _CHANGE_FIELDS:
            section, name = _CHANGE_FIELDS[key]
            if key == "gradient_checkpointing":
                value = "on" if value else "off"
            setattr(getattr(new, section), name, value)
    return new


def _planned_changes(cfg: RunConfig, hw: dict, dims, p: RunPlan) -> list[PlannedChange]:
    """The estimator's candidate changes, each planned again as applying it would plan it; a change that
    moves the check to another device or does not lower the total is left out."""
    from studio.models import catalog

    out: list[PlannedChange] = []
    for r in recommendations(dims, p.estimate, catalog_models=catalog.load()):
        new = plan(apply_change(cfg, r.change), hw, with_recommendations=False, with_duration=False)
        if new.estimate is None or new.device != p.device or new.capacity_bytes != p.capacity_bytes \
                or new.total_bytes >= p.total_bytes:
            continue
        message = Msg("memory.rec.line", label=r.label, old=_gib(p.total_bytes), new=_gib(new.total_bytes),
                      verdict=Msg(f"memory.verdict.{new.verdict.replace(' ', '_')}"))
        out.append(PlannedChange(kind=r.kind, change=r.change, message=message, cost=r.cost,
                                 total_bytes=new.total_bytes, verdict=new.verdict or ""))
    return out


def largest_model(cfg: RunConfig, p: RunPlan):
    """(catalog entry, its estimate) of the largest catalog model that fits with these settings, or None.
    With gradient checkpointing on "auto", a model that needs it gets it."""
    from studio.models import catalog

    if p.estimate is None or not p.capacity_bytes:
        return None
    setup = dict(p.estimate.setup)
    if str(cfg.training.gradient_checkpointing).lower() == "auto":
        setup["gradient_checkpointing"] = True
    return largest_fitting_model(catalog.load(), p.capacity_bytes, setup)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
