"""What this CPU offers, read once at start-up: its model name and instruction-set flags.

The served runtime and precision follow from these (`inference.backends.choose_backend`):
bf16 pays only where the CPU multiplies bf16 natively (AVX512-BF16, AMX-BF16), and INT8
only where it has dot-product instructions for 8-bit integers (VNNI, AMX-INT8). Elsewhere
the emulation is slower than FP32.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@dataclass(frozen=True)
class CpuFeatures:
    model: str
    flags: frozenset[str]
    cores: int

    @property
    def bf16(self) -> bool:
        """Native bf16 arithmetic."""
        return bool(self.flags & BF16_FLAGS)

    @property
    def int8(self) -> bool:
        """Native 8-bit integer dot products."""
        return bool(self.flags & INT8_FLAGS)

    def summary(self) -> str:
        fast = sorted(self.flags & (BF16_FLAGS | INT8_FLAGS | {"avx512f", "avx2"}))
        return f"{self.model} x{self.cores} ({', '.join(fast) or 'no AVX2/AVX-512'})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo text; the first processor's lines count."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model, flags


def read_cpu_features(path: Path = CPUINFO) -> CpuFeatures:
    """This machine's CPU; without /proc/cpuinfo (not Linux) no flags, so FP32 is chosen."""
    try:
        model, flags = parse_cpuinfo(path.read_text())
    except OSError:
        model, flags = "", frozenset()
    name = model or platform.processor() or platform.machine()
    return CpuFeatures(name, flags, os.cpu_count() or 1)
