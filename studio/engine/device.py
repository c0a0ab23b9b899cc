"""Device and precision, chosen automatically and overridable.

CUDA, then Apple MPS, then CPU. On CUDA bf16 where the GPU supports it, fp16 otherwise. On a CPU,
bf16 autocast only where the processor has native bf16 (avx512_bf16 or AMX): elsewhere PyTorch
emulates it and it is slower than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from studio.errors import Sentence


@dataclass(frozen=True)
class Placement:
    device: str  # cuda | mps | cpu
    precision: str  # bf16 | fp16 | fp32 (the compute precision: autocast on top of the weights' dtype)
    reason: str  # one plain sentence for the log (a Sentence: English, with its Chinese as .zh)

    @property
    def weights_dtype(self):
        """dtype the base weights are loaded in. On CUDA, 16-bit (LoRA keeps its own weights in fp32);
        on CPU and MPS fp32 weights with autocast, which is where bf16 autocast pays off."""
        import torch

        if self.device == "cuda":
            return torch.bfloat16 if self.precision == "bf16" else torch.float16 if self.precision == "fp16" else torch.float32
        return torch.float32


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def choose(device: str = "auto", precision: str = "auto") -> Placement:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if precision != "auto":
        return Placement(device, precision, Sentence(f"{precision} on {device}, as set in the config.",
                                                     f"在 {device} 上使用 {precision}，按配置设置。"))
    if device == "cuda":
        if cuda_bf16():
            return Placement(device, "bf16", Sentence("bf16 on the GPU: half the memory of fp32 and fast on this GPU.",
                                                      "GPU 上使用 bf16：内存只要 fp32 的一半，在这块 GPU 上也很快。"))
        return Placement(device, "fp16", Sentence(
            "fp16 on the GPU: this GPU has no bf16, fp16 with loss scaling is the fast choice.",
            "GPU 上使用 fp16：这块 GPU 不支持 bf16，带损失缩放的 fp16 是较快的选择。"))
    if device == "mps":
        return Placement(device, "fp32", Sentence(
            "fp32 on Apple's GPU: mixed precision there is not reliable for training yet.",
            "Apple GPU 上使用 fp32：那里的混合精度训练还不够可靠。"))
    if cpu_has_bf16():
        return Placement(device, "bf16", Sentence(
            "bf16 autocast on the CPU: this processor computes bf16 natively (avx512_bf16/AMX).",
            "CPU 上使用 bf16 自动混合精度：这颗处理器原生支持 bf16 计算（avx512_bf16/AMX）。"))
    return Placement(device, "fp32", Sentence(
        "fp32 on the CPU: this processor has no native bf16, and emulated bf16 is slower.",
        "CPU 上使用 fp32：这颗处理器不原生支持 bf16，模拟的 bf16 反而更慢。"))
