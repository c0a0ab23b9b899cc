"""Device and precision for a run: the plan's rule (studio.plan.placement) on this machine's hardware.

CUDA, then Apple MPS, then CPU. On CUDA bf16 where the GPU supports it, fp16 otherwise. On a CPU,
bf16 autocast only where the processor has native bf16 (avx512_bf16 or AMX): elsewhere PyTorch
emulates it and it is slower than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio import hardware
from studio.messages import Msg


@dataclass(frozen=True)
class Placement:
    device: str  # cuda | mps | cpu
    precision: str  # bf16 | fp16 | fp32 (the compute precision: autocast on top of the weights' dtype)
    reason: Msg | str  # why, for the log

    @property
    def weights_dtype(self):
        """dtype the base weights are loaded in. On CUDA, 16-bit (LoRA keeps its own weights in fp32);
        on CPU and MPS fp32 weights with autocast, which is where bf16 autocast pays off."""
        import torch

        if self.device == "cuda":
            return torch.bfloat16 if self.precision == "bf16" else torch.float16 if self.precision == "fp16" else torch.float32
        return torch.float32


def choose(device: str = "auto", precision: str = "auto", hw: dict | None = None) -> Placement:
    from studio.plan import placement

    return Placement(*placement(device, precision, hardware.detect() if hw is None else hw))
