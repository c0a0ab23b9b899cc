"""What devices this machine has and how much memory they hold.

    from studio import hardware
    hw = hardware.detect()          # {"cuda": bool, "mps": bool, "gpus": [...], "cpu_cores": int, "ram_bytes": int, ...}
    hardware.summary_line(hw)       # "1 x NVIDIA H100 80GB HBM3 (79.2 GiB, 78.9 GiB free, bf16) · 16 CPU cores · 128 GiB RAM"
    hardware.capacity_bytes(hw)     # memory of the device training would use (first GPU, else the RAM this app can have)
    hardware.described_gpu(24)      # a machine with one 24 GiB GPU, for planning a run elsewhere

torch is imported only inside detect() (and only if installed), so importing this module is cheap.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

GiB = 1024**3


def _cpu_flags(cpuinfo: str | None = None) -> set[str]:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("flags", "features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_support(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16 on x86; Apple silicon via MPS aside)."""
    flags = _cpu_flags(cpuinfo)
    return bool({"avx512_bf16", "amx_bf16"} & flags) or "bf16" in flags  # "bf16" is the aarch64 flag


def _ram() -> tuple[int, int]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total), int(vm.available)
    except Exception:
        total = avail = 0
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                k, v = line.split(":", 1)
                if k == "MemTotal":
                    total = int(v.split()[0]) * 1024
                elif k == "MemAvailable":
                    avail = int(v.split()[0]) * 1024
        except OSError:
            pass
        return total, avail


def _cgroup_limit() -> int | None:
    """The memory limit of this container (cgroup v2 or v1), if there is one: a Space or a Docker
    container often has far less than the host's RAM."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 2**60:
            return int(value)
    return None


def ram_for_this_process() -> int:
    """RAM this process can use for training: what is available plus what it already holds (a model
    kept from an earlier run counts as its own), within the container's limit."""
    total, avail = _ram()
    try:
        import psutil

        own = int(psutil.Process().memory_info().rss)
    except Exception:
        own = 0
    value = min(total, avail + own) if total else avail + own
    limit = _cgroup_limit()
    return int(min(value, limit) if limit else value)


def described_gpu(gib: float, name: str = "", bf16: bool = True) -> dict:
    """A machine with one CUDA GPU of `gib` GiB: for planning a run on hardware other than this one."""
    hw = detect()
    gpu = {"index": 0, "name": name, "total_bytes": int(gib * GiB), "free_bytes": None, "bf16": bf16,
           "compute_capability": ""}
    return {**hw, "cuda": True, "mps": False, "gpus": [gpu], "described": True}


def _cuda_gpus(torch) -> list[dict]:
    gpus = []
    try:
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return gpus
    for i in range(n):
        try:
            props = torch.cuda.get_device_properties(i)
            try:
                free, total = torch.cuda.mem_get_info(i)
            except Exception:
                free, total = None, int(props.total_memory)
            bf16 = props.major >= 8  # Ampere and newer
            gpus.append({"index": i, "name": props.name, "total_bytes": int(total),
                         "free_bytes": int(free) if free is not None else None, "bf16": bool(bf16),
                         "compute_capability": f"{props.major}.{props.minor}"})
        except Exception:
            continue
    return gpus


@lru_cache(maxsize=1)
def _detect_cached() -> dict:
    return _detect()


def detect(refresh: bool = False) -> dict:
    """The devices of this machine. Keys: cuda, mps (bool), gpus (list of dicts: index, name, total_bytes,
    free_bytes, bf16, compute_capability), cpu_cores, ram_bytes, ram_available_bytes, cpu_bf16, torch
    (version or None). Free memory is as of the first call unless refresh=True."""
    if refresh:
        _detect_cached.cache_clear()
    return dict(_detect_cached())


def _detect() -> dict:
    total, avail = _ram()
    hw = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": os.cpu_count() or 1,
          "ram_bytes": total, "ram_available_bytes": avail, "ram_for_app_bytes": ram_for_this_process(),
          "cpu_bf16": cpu_bf16_support(), "torch": None}
    try:
        import torch
    except Exception:
        return hw
    hw["torch"] = torch.__version__
    hw["gpus"] = _cuda_gpus(torch)
    hw["cuda"] = bool(hw["gpus"])
    try:
        hw["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    except Exception:
        hw["mps"] = False
    return hw


def default_device(hw: dict | None = None) -> str:
    hw = detect() if hw is None else hw
    return "cuda" if hw.get("cuda") else ("mps" if hw.get("mps") else "cpu")


def capacity_bytes(hw: dict | None = None, device: str | None = None) -> int | None:
    """Memory the training device offers: the first GPU's total; on a CPU or Apple GPU (unified memory) the
    RAM this process can have (as of detect(); hardware.detect(refresh=True) measures it again)."""
    hw = detect() if hw is None else hw
    device = device or default_device(hw)
    if device == "cuda":
        gpus = hw.get("gpus") or []
        return int(gpus[0]["total_bytes"]) if gpus else None
    return int(hw.get("ram_for_app_bytes") or hw.get("ram_bytes") or 0) or None


def summary_line(hw: dict | None = None, lang: str = "en") -> str:
    """One plain line for the UI."""
    from studio.messages import say

    hw = detect() if hw is None else hw
    parts = []
    gpus = hw.get("gpus") or []
    if gpus:
        names: dict[str, list[dict]] = {}
        for g in gpus:
            names.setdefault(g["name"], []).append(g)
        for name, gs in names.items():
            g = gs[0]
            free = say("hw.gpu_free", lang, gib=g["free_bytes"] / GiB) if g.get("free_bytes") is not None else ""
            bf = say("hw.bf16" if g.get("bf16") else "hw.no_bf16", lang)
            parts.append(say("hw.gpu", lang, n=len(gs), name=name, gib=g["total_bytes"] / GiB, free=free, bf16=bf))
    elif hw.get("mps"):
        parts.append(say("hw.mps", lang))
    else:
        parts.append(say("hw.no_gpu", lang))
    parts.append(say("hw.cores_bf16" if hw.get("cpu_bf16") else "hw.cores", lang, n=hw.get("cpu_cores") or 1))
    if hw.get("ram_bytes"):
        parts.append(say("hw.ram", lang, gib=hw["ram_bytes"] / GiB))
    return " · ".join(parts)


def parse_memory_size(text: str | float | int) -> int:
    """'24', '24GiB', '24 GB', '80G', '16000MiB' -> bytes (a bare number is GiB)."""
    from studio.errors import StudioError

    s = str(text).strip().lower().replace(" ", "")
    units = {"gib": GiB, "gb": 10**9, "g": GiB, "mib": 1024**2, "mb": 10**6, "m": 1024**2, "tib": 1024**4, "tb": 10**12}
    mult = GiB
    for u in sorted(units, key=len, reverse=True):
        if s.endswith(u):
            mult, s = units[u], s[: -len(u)]
            break
    try:
        v = float(s)
    except ValueError:
        raise StudioError("hw.error.size", value=str(text)) from None
    if not v > 0:
        raise StudioError("hw.error.positive", value=str(text))
    return int(v * mult)
