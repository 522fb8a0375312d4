"""The vehicle gate's network: a pretrained detector's first layers, pooled, and a linear head.

`GateNet` runs the layers of an Ultralytics model up to its last tapped layer, averages
each tapped layer's feature map over space (global average pooling) and concatenates
them: one feature vector per photo. With a head (`LinearHead`, fitted in numpy by
training/vehicle_gate.py) it ends in a sigmoid: the probability that a vehicle is shown;
with a view head as well (training/view_head.py), a second sigmoid on the same features: the
probability that the photo shows the whole car.
The standardisation the head was fitted with is folded into its weights, so the exported
ONNX file needs nothing but the preprocessed photo (inference/vehicle_gate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.errors import TrainingError
from training.gate_fit import LinearHead


class GateNet(nn.Module):
    """Pooled features of the tapped layers; with a head, the vehicle probability (and with a
    view head too, the whole-car view's probability beside it)."""

    def __init__(
        self,
        layers: nn.ModuleList,
        taps: tuple[int, ...],
        head: LinearHead | None = None,
        view: LinearHead | None = None,
    ) -> None:
        super().__init__()
        self.layers = layers
        self.taps = taps
        if view is not None and head is None:
            raise TrainingError("a view head rides on a gate: give the vehicle head too")
        self.linear = None if head is None else _linear(head)
        self.view_linear = None if view is None else _linear(view)

    def tapped(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of the tapped layers, in layer order."""
        outputs: list[Any] = []
        for layer in self.layers:
            source: Any = layer.f
            inputs: Any = x
            if source != -1:  # a neck layer reads earlier outputs (Ultralytics routing)
                sources = [source] if isinstance(source, int) else source
                inputs = [x if j == -1 else outputs[j] for j in sources]
            x = layer(inputs)
            outputs.append(x)
        return [outputs[k] for k in sorted(self.taps)]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([t.mean(dim=(2, 3)) for t in self.tapped(x)], dim=1)

    def columns(self, taps: tuple[int, ...], side: int) -> np.ndarray:
        """Indices of the feature columns that pool `taps` (a subset of this net's)."""
        if not set(taps) <= set(self.taps):
            raise TrainingError(f"taps {taps} are not all extracted ({self.taps})")
        with torch.no_grad():
            widths = [t.shape[1] for t in self.tapped(torch.zeros(1, 3, side, side))]
        starts = np.cumsum([0, *widths])
        return np.concatenate(
            [
                np.arange(starts[n], starts[n] + width)
                for n, (k, width) in enumerate(zip(sorted(self.taps), widths, strict=True))
                if k in taps
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        if self.linear is None:
            return feats
        vehicle = torch.sigmoid(self.linear(feats))
        if self.view_linear is None:
            return vehicle
        return vehicle, torch.sigmoid(self.view_linear(feats))


def _linear(head: LinearHead) -> nn.Linear:
    weights, bias = head.folded()
    linear = nn.Linear(len(weights), 1)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weights[None, :]).float())
        linear.bias.fill_(bias)
    return linear


def checkpoint_network(checkpoint: Any) -> Any:
    """The network an Ultralytics checkpoint holds, as Ultralytics itself loads it: the EMA
    weights where kept (an epoch checkpoint of `training.train --save-period` has them and
    no `model`), else `model` (a finished run's best.pt and last.pt); None if neither."""
    if not isinstance(checkpoint, dict):
        return None
    return checkpoint.get("ema") or checkpoint.get("model")


def load_gate_net(
    weights: Path,
    taps: tuple[int, ...],
    head: LinearHead | None = None,
    view: LinearHead | None = None,
) -> GateNet:
    """The layers 0..max(taps) of an Ultralytics checkpoint, in float32 eval mode."""
    if not weights.is_file():
        raise TrainingError(f"--init {weights}: no such checkpoint")
    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    model = checkpoint_network(checkpoint)
    if model is None or not hasattr(model, "model"):
        raise TrainingError(f"--init {weights}: not an Ultralytics checkpoint")
    layers = list(model.model)
    if not taps or max(taps) >= len(layers) - 1:
        raise TrainingError(f"--taps {taps}: layers 0-{len(layers) - 2} can be tapped")
    kept = nn.ModuleList(layers[: max(taps) + 1])
    net = GateNet(kept, taps, head, view).float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def export_onnx(
    net: nn.Module,
    out: Path,
    side: int,
    metadata: dict[str, str],
    output: str = "vehicle",
    extras: int = 0,
    more_outputs: tuple[str, ...] = (),
) -> None:
    """The net with its head as ONNX: input `images` (N, 3, side, side) RGB in [0, 1] (and,
    with `extras`, a second input `extras` (N, extras)), output `output` (N, outputs): the
    gate's `vehicle` (N, 1) by default, then `more_outputs` where the net returns more."""
    import onnx

    if isinstance(net, GateNet) and net.linear is None:
        raise TrainingError("only a gate with a fitted head can be exported")
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs: tuple[torch.Tensor, ...] = (torch.zeros(1, 3, side, side),)
    names = ["images"]
    if extras:
        inputs, names = (*inputs, torch.zeros(1, extras)), [*names, "extras"]
    torch.onnx.export(
        net,
        inputs,
        str(out),
        input_names=names,
        output_names=[output, *more_outputs],
        dynamic_axes={n: {0: "batch"} for n in (*names, output, *more_outputs)},
        opset_version=17,
        dynamo=False,
    )
    model = onnx.load(str(out))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out))


def onnx_parity(path: Path, net: nn.Module, side: int, extras: int = 0) -> float:
    """Largest difference between an exported file and its PyTorch net on generated inputs
    (`images`, and `extras` columns where the net takes them); a TrainingError above 1e-3."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    feeds = {"images": rng.random((3, 3, side, side), dtype=np.float32)}
    if extras:
        feeds["extras"] = rng.random((3, extras), dtype=np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    served = session.run(None, feeds)[0]
    with torch.no_grad():
        expected = net(*(torch.from_numpy(v) for v in feeds.values())).numpy()
    parity = float(np.abs(served - expected).max())
    if parity > 1e-3:
        raise TrainingError(f"{path}: ONNX and PyTorch disagree by {parity:.2e}")
    return parity
