"""What to change to make a run fit: each change re-estimated, cheapest in quality and speed first."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from studio.errors import StudioError
from studio.memory.estimate import Estimate, estimate
from studio.memory.figure import format_bytes
from studio.messages import Msg
from studio.models.dims import ModelDims

@dataclass
class Recommendation:
    kind: str  # gc | batch | optim | seq | lora | qlora | bits4 | all | model: the catalog ids memory.rec.<kind>, memory.cost.<kind>
    change: dict[str, Any]  # keyword arguments of estimate() to apply (model: a catalog id)
    before_bytes: int
    total_bytes: int
    fits: bool
    verdict: str
    params: dict[str, Any] = field(default_factory=dict)  # what the label names (n, old, new, id)

    @property
    def label(self) -> Msg:
        return Msg(f"memory.rec.{self.kind}", **self.params)

    @property
    def cost(self) -> Msg:
        return Msg(f"memory.cost.{self.kind}")

    @property
    def message(self) -> Msg:
        """"turn on gradient checkpointing: 31.2 GiB -> 19.5 GiB, fits" in any language."""
        return Msg("memory.rec.line", label=self.label, old=format_bytes(self.before_bytes),
                   new=format_bytes(self.total_bytes), verdict=Msg(f"memory.verdict.{self.verdict.replace(' ', '_')}"))

    @property
    def text(self) -> str:
        return self.message.text("en")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text, "message": self.message.to_dict()}


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
    cands: list[tuple[str, dict, dict]] = []
    if not s["gradient_checkpointing"]:
        cands.append(("gc", {"gradient_checkpointing": True}, {}))
    if s["batch_size"] > 1:
        n = s["batch_size"] * s["grad_accum"]
        cands.append(("batch", {"batch_size": 1, "grad_accum": n}, {"n": n}))
    if s["method"] == "full" and s["optimizer"] == "adamw" and est.device == "cuda":  # bitsandbytes: NVIDIA only
        cands.append(("optim", {"optimizer": "adamw_8bit"}, {}))
    if s["seq_len"] > 256:
        new = max(256, s["seq_len"] // 2)
        cands.append(("seq", {"seq_len": new}, {"old": s["seq_len"], "new": new}))
    if s["method"] == "full":
        cands.append(("lora", {"method": "lora"}, {}))
    if s["method"] in ("lora", "full"):
        cands.append(("qlora", {"method": "qlora", "quant_bits": 4}, {}))
    if s["method"] == "qlora" and s.get("quant_bits") == 8:
        cands.append(("bits4", {"quant_bits": 4}, {}))
    recs: list[Recommendation] = []
    for kind, change, params in cands:
        try:
            new = _rerun(dims, est, change, extra)
        except StudioError:
            continue
        if new.total_bytes >= est.total_bytes:
            continue
        recs.append(_rec(kind, change, est, new, params))
    if recs and not any(r.fits for r in recs):
        combo: dict[str, Any] = {}
        for r in recs:
            combo.update(r.change)
        recs.append(_rec("all", combo, est, _rerun(dims, est, combo, extra), {}))
    if catalog_models is not None:
        best = largest_fitting_model(catalog_models, est.capacity_bytes, {**est.setup, **extra}, smaller_than=dims.param_count)
        if best is not None:
            entry, new = best
            recs.append(_rec("model", {"model": entry.id}, est, new, {"id": entry.id}))
    return recs


def _rec(kind: str, change: dict, old: Estimate, new: Estimate, params: dict) -> Recommendation:
    return Recommendation(kind=kind, change=change, before_bytes=old.total_bytes, total_bytes=new.total_bytes,
                          fits=bool(new.fits), verdict=new.verdict or "", params=params)


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
