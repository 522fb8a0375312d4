"""Training in bf16 on the CPU: allowed only where the CPU multiplies bf16 natively.

Autocast keeps the weights, the optimiser and the loss in FP32 and runs convolutions and
matrix products in bf16, so what is exported is the same FP32 model, trained in fewer
seconds (bench/bench_training.py measures how many).
"""

from __future__ import annotations

from typing import Any

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


CPU_BF16_HELP = (
    "train in bf16 autocast, on a CPU with native bf16 (AMX or AVX512-BF16) only: faster "
    "steps, the same FP32 model exported"
)

CPU_BF16_HINT = (
    "note: this CPU multiplies bf16 natively; --cpu-bf16 trains a step in about half the "
    "time (docs/performance.md)"
)


def cpu_autocast(enabled: bool) -> Any:
    """A plain PyTorch training step's forward pass in bf16 where `enabled`, else as it is."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled)
