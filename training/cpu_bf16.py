"""Training in bf16 on the CPU: allowed only where the CPU multiplies bf16 natively."""

from __future__ import annotations

from inference.cpu_features import CpuFeatures
from training.errors import TrainingError


def check_cpu_bf16(device: str, cpu: CpuFeatures) -> None:
    """Refused before any work: bf16 pays only where the CPU multiplies it natively."""
    if device != "cpu":
        raise TrainingError(
            f"--cpu-bf16 is for training on the CPU, not --device {device}; on a GPU, --amp"
        )
    if not cpu.bf16:
        raise TrainingError(
            f"--cpu-bf16: {cpu.summary()} has no native bf16 (AVX512-BF16 or AMX), where "
            f"emulated bf16 is slower than FP32; train without it"
        )
