"""Peak training memory from a model's dimensions: pure arithmetic, no torch, no weights.

- estimate.py: `estimate(dims, method, ...)` -> Estimate (the breakdown: weights, gradients, optimizer
  states, activations, logits, overhead), and what is modelled and why;
- recommend.py: what to change to make it fit, each change re-estimated; the largest catalog model that fits;
- figure.py: the breakdown as a chart and as text;
- cli.py: `studio estimate`.

A run's estimate is never computed here directly by a screen: `studio.plan.plan(cfg, hw)` decides device,
precision, gradient checkpointing and packing once, and calls `estimate` with them.
"""

from studio.memory.estimate import (ATTENTIONS, FIT_SHARE, LOSSES, METHODS, OPTIMIZERS, PRECISIONS, TIGHT_SHARE,
                                    BREAKDOWN_PARTS, Estimate, GiB, engine_loss, estimate)
from studio.memory.figure import breakdown_figure, fmt_table, format_bytes, part_name, verdict_word
from studio.memory.recommend import Recommendation, largest_fitting_model, recommendations
from studio.models.dims import ModelDims, dims_from_config, lora_param_count, resolve_target_modules

__all__ = ["ModelDims", "Estimate", "Recommendation", "dims_from_config", "estimate", "engine_loss", "recommendations",
           "largest_fitting_model", "breakdown_figure", "fmt_table", "format_bytes", "part_name", "verdict_word", "lora_param_count",
           "resolve_target_modules", "BREAKDOWN_PARTS", "GiB", "FIT_SHARE", "TIGHT_SHARE", "METHODS", "OPTIMIZERS",
           "PRECISIONS", "ATTENTIONS", "LOSSES"]
