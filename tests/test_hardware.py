"""studio.hardware: detection on this machine, and the summary line for other machines."""

from __future__ import annotations

import pytest

from studio import hardware
from studio.errors import StudioError

GiB = 1024**3


def test_detect_on_this_machine():
    hw = hardware.detect()
    for key in ("cuda", "mps", "gpus", "cpu_cores", "ram_bytes", "cpu_bf16"):
        assert key in hw
    assert isinstance(hw["cuda"], bool) and isinstance(hw["mps"], bool)
    assert hw["cpu_cores"] >= 1 and hw["ram_bytes"] > 0
    assert hw["cuda"] == bool(hw["gpus"])
    assert hardware.summary_line(hw)


def test_detect_feeds_config_validation():
    from studio.config import RunConfig

    cfg = RunConfig()
    cfg.method.method = "qlora"
    problems = cfg.validate(hardware={"cuda": False, "mps": False})
    assert any("NVIDIA" in p.text() and "NVIDIA" in p.text("zh") for p in problems)


def test_cpu_bf16_flags():
    assert hardware.cpu_bf16_support("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert hardware.cpu_bf16_support("flags\t: fpu amx_bf16 amx_tile\n")
    assert not hardware.cpu_bf16_support("flags\t: fpu sse avx2\n")
    assert hardware.cpu_bf16_support("Features\t: fp asimd bf16\n")  # aarch64


def test_summary_lines():
    gpu = {"cuda": True, "mps": False, "cpu_cores": 16, "ram_bytes": 128 * GiB, "cpu_bf16": True,
           "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_bytes": 80 * GiB, "free_bytes": 79 * GiB,
                     "bf16": True}]}
    line = hardware.summary_line(gpu)
    assert line.startswith("1 x NVIDIA H100 80GB HBM3 (80.0 GiB, 79.0 GiB free, bf16)")
    assert "16 CPU cores (bf16)" in line and "128 GiB RAM" in line
    assert "可用" in hardware.summary_line(gpu, "zh")
    two = dict(gpu, gpus=[dict(gpu["gpus"][0], index=i, bf16=False) for i in range(2)])
    assert hardware.summary_line(two).startswith("2 x NVIDIA H100") and "no bf16" in hardware.summary_line(two)
    mac = {"cuda": False, "mps": True, "gpus": [], "cpu_cores": 8, "ram_bytes": 16 * GiB}
    assert "MPS" in hardware.summary_line(mac)
    cpu = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": 2, "ram_bytes": 16 * GiB}
    assert hardware.summary_line(cpu) == "no GPU: training runs on the CPU · 2 CPU cores · 16 GiB RAM"


def test_capacity_and_default_device():
    gpu = {"cuda": True, "mps": False, "gpus": [{"total_bytes": 24 * GiB}], "ram_bytes": 64 * GiB}
    assert hardware.default_device(gpu) == "cuda"
    assert hardware.capacity_bytes(gpu) == 24 * GiB
    assert hardware.capacity_bytes(gpu, "cpu") == 64 * GiB
    cpu = {"cuda": False, "mps": False, "gpus": [], "ram_bytes": 16 * GiB}
    assert hardware.default_device(cpu) == "cpu" and hardware.capacity_bytes(cpu) == 16 * GiB


def test_parse_memory_size():
    assert hardware.parse_memory_size("24") == 24 * GiB
    assert hardware.parse_memory_size("24 GiB") == 24 * GiB
    assert hardware.parse_memory_size("16GB") == 16 * 10**9
    assert hardware.parse_memory_size(8) == 8 * GiB
    assert hardware.parse_memory_size("512MiB") == 512 * 1024**2
    for bad in ("lots", "-3", "0"):
        with pytest.raises(StudioError):
            hardware.parse_memory_size(bad)
