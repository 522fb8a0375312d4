"""`python -m training.soup`: one checkpoint whose weights are the mean of several
checkpoints of one model, fine-tuned from one starting point (a "model soup": Wortsman et
al., ICML 2022). A model and its own further fine-tune, averaged, often holds more of what
each learnt than either alone. Every weight is averaged, BatchNorm statistics included;
integer buffers (a BatchNorm's batch count) are the first checkpoint's. The result is an
Ultralytics checkpoint with no optimizer state, as `strip_optimizer` leaves one, that `cdat
export` and `--init` take::

    python -m training.soup --weights inference/models/parts-seg-n-20261206b.pt \\
        runs/train/parts-cut2/weights/epoch2.pt --out runs/cand/parts-soup.pt
    python -m training.soup --weights a.pt b.pt c.pt --mix 0.5 0.25 0.25 --out soup.pt

A checkpoint of another architecture, other class names, or an unreadable file is one
error line; nothing is written.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.errors import TrainingError, run_script


@dataclass(frozen=True)
class SoupHyperparameters:
    weights: tuple[Path, ...]
    mix: tuple[float, ...]
    """Each checkpoint's share of the mean, summing to 1."""


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        add_help=add_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--weights",
        type=Path,
        nargs="+",
        required=True,
        help="two or more .pt checkpoints of one model and one lineage",
    )
    parser.add_argument(
        "--mix",
        type=float,
        nargs="+",
        default=None,
        help="each checkpoint's share, in order, summing to 1 (default: equal)",
    )
    parser.add_argument("--out", type=Path, required=True, help="the .pt file to write")
    return parser  # fmt: skip


def hyperparameters(args: argparse.Namespace) -> SoupHyperparameters:
    weights = tuple(args.weights)
    if len(weights) < 2:
        raise TrainingError("--weights: give two or more checkpoints to average")
    mix = tuple(args.mix) if args.mix is not None else (1.0 / len(weights),) * len(weights)
    if len(mix) != len(weights):
        raise TrainingError(f"--mix: {len(mix)} shares for {len(weights)} checkpoints")
    if any(share <= 0 for share in mix) or abs(sum(mix) - 1.0) > 1e-6:
        raise TrainingError(f"--mix {list(mix)}: need positive shares summing to 1")
    return SoupHyperparameters(weights, mix)


def mean_state(states: Sequence[Mapping[str, Any]], mix: Sequence[float]) -> dict[str, Any]:
    """The weighted mean of state dicts with the same keys and shapes; integer buffers are
    the first's."""
    import torch

    first = states[0]
    for n, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            raise TrainingError(f"checkpoint {n} is not the same architecture as the first")
        for key, tensor in state.items():
            if tensor.shape != first[key].shape:
                shapes = f"{tuple(tensor.shape)} against {tuple(first[key].shape)}"
                raise TrainingError(f"checkpoint {n}: {key} has shape {shapes}")
    out: dict[str, Any] = {}
    for key, tensor in first.items():
        if not torch.is_floating_point(tensor):
            out[key] = tensor.clone()
            continue
        total = sum(share * s[key].double() for share, s in zip(mix, states, strict=True))
        out[key] = total.to(tensor.dtype)
    return out


def _model(path: Path) -> tuple[dict[str, Any], Any]:
    import torch

    if not path.is_file():
        raise TrainingError(f"--weights {path}: no such file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise TrainingError(f"--weights {path}: not a PyTorch checkpoint ({exc})") from None
    model = None
    if isinstance(checkpoint, dict):  # a training checkpoint keeps its EMA; a stripped one, model
        ema = checkpoint.get("ema")
        model = ema if ema is not None else checkpoint.get("model")
    if model is None or not hasattr(model, "state_dict"):
        raise TrainingError(f"--weights {path}: no model in it (an Ultralytics .pt is asked)")
    return checkpoint, model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(args: argparse.Namespace) -> int:
    hp = hyperparameters(args)
    loaded = [_model(path) for path in hp.weights]
    names = [getattr(model, "names", None) for _, model in loaded]
    if any(n != names[0] for n in names[1:]):
        raise TrainingError("--weights: the checkpoints name their classes differently")
    states = [{k: v.float() if v.is_floating_point() else v for k, v in m.state_dict().items()}
              for _, m in loaded]  # fmt: skip
    template_checkpoint, template = loaded[0]
    soup = template.float()
    soup.load_state_dict(mean_state(states, hp.mix))
    checkpoint = {
        **{k: v for k, v in template_checkpoint.items() if k not in ("optimizer", "scaler")},
        "model": soup.half(),
        "ema": None,
        "updates": None,
        "optimizer": None,
        "scaler": None,
        "best_fitness": None,
        "soup": [
            {"file": str(path), "sha256": _sha256(path), "share": share}
            for path, share in zip(hp.weights, hp.mix, strict=True)
        ],
    }
    import torch

    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    print(f"wrote {args.out}: the mean of {len(hp.weights)} checkpoints, shares {list(hp.mix)}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
