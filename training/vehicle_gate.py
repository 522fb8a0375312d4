"""Train the vehicle gate (inference/vehicle_gate.py): does a photo show a vehicle at all?

A pretrained detector's first layers (default: the shared COCO YOLO11n-seg, AGPL-3.0) are
kept frozen; their feature maps at `--taps`, averaged over space, feed a class-weighted
logistic regression (training/gate_fit.py) fitted on the train photos of the four car sets
against the `no-vehicle` photos whose split is `train` (training/gate_data.py). Photos
without a vehicle are few, so each is also seen mirrored and in `--negative-views` - 2
random square crops. The L2 strength and the threshold are chosen on val only: the
threshold keeps every vehicle source's val refusals at or under `--max-refused`.
The result is one ONNX file (layers, pooling, head, sigmoid) and a report beside it.

    python -m training.vehicle_gate --out runs/gate/vehicle-gate.onnx
    cdat gate train --out runs/gate/vehicle-gate.onnx --taps 4 6 10 --side 256

`--conditioned-views N` shows every train photo, of either class, N more times, each under
a phone condition drawn at random (training/photo_conditions.py: a hard JPEG squeeze, dusk,
sensor noise, a colour cast), for a gate that judges such photos as it judges daylight ones
(`bench/bench_photo_conditions.py --gate-only` measures it); `--negative-conditioned-views`
sets the photos without a vehicle apart, and `--refusals-like <served gate>` holds the
threshold to that gate's own refusals of each vehicle source's val photos.

Features are cached under `--cache` (one file per init, side and extracted taps), so a
second run with other head settings extracts nothing; with `--extract-taps` (a superset of
`--taps`) runs with different `--taps` share one extraction:

    cdat gate train --out runs/gate/a.onnx --taps 4 6 10 --extract-taps 2 4 6 8 10 13 16 19 22
 Test figures come from the served pipeline:
`cdat gate evaluate` (training/gate_eval.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingError, run_script
from training.gate_data import GatePhoto, gate_photos
from training.gate_fit import (
    Examples,
    probabilities,
    refused_counts,
    refused_shares,
    select_head,
)

DEFAULT_CACHE = Path("runs") / "gate" / "features"


@dataclass
class GateHyperparameters:
    side: int = 256
    """Input side in pixels (the photo's centred square, resized)."""
    taps: tuple[int, ...] = (4, 6, 10)
    """Layers whose feature maps are pooled (YOLO11: 4, 6 = P3, P4 backbone; 10 = C2PSA)."""
    extract_taps: tuple[int, ...] = ()
    """Layers extracted and cached, a superset of `taps` (empty: `taps`)."""
    negative_views: int = 4
    """Views of each train photo without a vehicle: itself, mirrored, then random crops."""
    conditioned_views: int = 0
    """Further views of each train photo of either class, each under a phone condition drawn
    at random (training/photo_conditions.py: compression, dusk, noise, a colour cast), so
    that a photo sent on through a messaging app or taken at dusk is judged as in daylight."""
    negative_conditioned_views: int | None = None
    """Conditioned views of each train photo without a vehicle (None: `conditioned_views`):
    photos without a vehicle are a tenth of the train rows, so a gate taught conditions on
    both classes alike learns them mostly as vehicle photos."""
    refusals_like: str | None = None
    """A gate .onnx whose own refusals of each vehicle source's val photos (at the threshold
    its file names) bound the threshold, with `max_refused`: a gate that refuses no more
    vehicle photos than the served one, so what it gains comes from its head."""
    l2_strengths: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
    """Candidate L2 penalties on the standardised weights, chosen on val."""
    max_refused: float = 0.02
    """At most this share of any vehicle source's val photos may be refused."""
    seed: int = 0
    """Seed of the random crops and of the car sets' re-split (as converted)."""


@dataclass
class FeatureCache:
    """Pooled features per (photo, view), stored as one .npz file."""

    path: Path
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path, init: Path, hp: GateHyperparameters) -> FeatureCache:
        digest = hashlib.sha256(init.read_bytes()).hexdigest()[:12]
        taps = "-".join(map(str, hp.extract_taps or hp.taps))
        path = folder / f"{digest}-s{hp.side}-t{taps}.npz"
        cache = cls(path)
        if path.is_file():
            with np.load(path) as data:
                cache.rows = dict(zip(data["keys"].tolist(), data["features"], strict=True))
        return cache

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.rows))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, features=np.stack(list(self.rows.values())))
        tmp.replace(self.path)


def photo_views(image: np.ndarray, views: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The photo, mirrored, then random square crops of half to nine tenths its short side."""
    out = [image, image[:, ::-1]][:views]
    height, width = image.shape[:2]
    for _ in range(views - len(out)):
        side = int(min(height, width) * rng.uniform(0.5, 0.9))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        out.append(image[top : top + side, left : left + side])
    return out


def read_photo(path: Path) -> np.ndarray:
    """The photo as the served pipeline decodes it (EXIF upright, BGR)."""
    return read_photo_scaled(path)[0]


def read_photo_scaled(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    """`read_photo`, with the scale that maps the decoded image to the photo's pixels."""
    return decode_photo_scaled(photo_bytes(path), str(path))


def photo_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TrainingError(f"cannot read {path}: {exc}") from exc


def decode_photo_scaled(data: bytes, name: str) -> tuple[np.ndarray, tuple[float, float]]:
    """A photo's bytes decoded as serving decodes them, with the scale to its pixels."""
    from inference.errors import UnreadableImage
    from inference.imaging import load_photo

    try:
        decoded = load_photo(data)
    except UnreadableImage as exc:
        raise TrainingError(f"cannot read {name}: {exc}") from exc
    return decoded.image, decoded.scale


def extract(
    net: Any,
    photos: Sequence[GatePhoto],
    views: int,
    hp: GateHyperparameters,
    cache: FeatureCache,
    conditioned: int = 0,
) -> Examples:
    """Features of `views` views of each photo, and of `conditioned` views each under a
    random phone condition (computed once, then read from the cache)."""
    import torch

    from inference.vehicle_gate import gate_input

    rng = np.random.default_rng(hp.seed)
    names_of = [f"{v}" for v in range(views)] + [f"c{v}" for v in range(conditioned)]
    keys = [[f"{photo.path}|{n}" for n in names_of] for photo in photos]
    todo = [(p, names) for p, names in zip(photos, keys, strict=True)
            if not all(n in cache.rows for n in names)]  # fmt: skip
    for start in range(0, len(todo), 32):  # a batch at a time: inputs are 0.8 MB each
        pending, inputs = [], []
        for photo, names in todo[start : start + 32]:
            data = photo_bytes(photo.path)
            image = decode_photo_scaled(data, str(photo.path))[0]
            shown = [*photo_views(image, views, rng),
                     *conditioned_views(data, str(photo.path), conditioned, rng)]  # fmt: skip
            for name, view in zip(names, shown, strict=True):
                pending.append(name)
                inputs.append(gate_input(view, hp.side))
        with torch.no_grad():
            batch = net.features(torch.from_numpy(np.stack(inputs)))
        cache.rows.update(zip(pending, batch.numpy(), strict=True))
        if (start // 32) % 20 == 19:
            cache.save()  # an interrupted extraction keeps what it did
    if todo:
        cache.save()
    rows = [cache.rows[n] for names in keys for n in names]
    vehicle = [p.vehicle for p in photos for _ in names_of]
    sources = [p.source for p in photos for _ in names_of]
    return Examples(np.stack(rows).astype(np.float64), np.array(vehicle), np.array(sources))


def conditioned_views(
    data: bytes, name: str, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The photo's bytes `count` times, each under a phone condition drawn at random, decoded
    as serving decodes them."""
    from training.photo_conditions import random_condition

    return [decode_photo_scaled(random_condition(data, rng), name)[0] for _ in range(count)]


def gate_examples(
    net: Any, split: str, hp: GateHyperparameters, cache: FeatureCache, data_root: Path | None
) -> Examples:
    """A split's features: vehicle photos once, photos without one in several views on train."""
    photos = gate_photos(split, data_root, seed=hp.seed)
    conditioned = hp.conditioned_views if split == "train" else 0
    cars = extract(net, [p for p in photos if p.vehicle], 1, hp, cache, conditioned)
    views = hp.negative_views if split == "train" else 1
    if split == "train" and hp.negative_conditioned_views is not None:
        conditioned = hp.negative_conditioned_views
    others = extract(net, [p for p in photos if not p.vehicle], views, hp, cache, conditioned)
    return Examples(
        np.vstack([cars.features, others.features]),
        np.concatenate([cars.vehicle, others.vehicle]),
        np.concatenate([cars.sources, others.sources]),
    )


def check_parity(onnx_path: Path, net: Any, head_p: np.ndarray, inputs: np.ndarray) -> float:
    """Largest difference between the ONNX file's probabilities and the numpy head's."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    served = session.run(None, {"images": inputs.astype(np.float32)})[0].reshape(-1)
    return float(np.abs(served - head_p).max())


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from training.init_weights import default_init

    hp = GateHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--out", type=Path, required=True, help="the gate's .onnx file to write")
    parser.add_argument(
        "--init", type=Path, default=Path(default_init()), help="Ultralytics checkpoint to cut"
    )
    parser.add_argument(
        "--taps", type=int, nargs="+", default=list(hp.taps), help="layers whose maps are pooled"
    )
    parser.add_argument(
        "--extract-taps",
        type=int,
        nargs="*",
        default=[],
        help="layers to extract and cache, a superset of --taps (default: --taps)",
    )
    parser.add_argument("--side", type=int, default=hp.side, help="input side in pixels")
    parser.add_argument(
        "--negative-views",
        type=int,
        default=hp.negative_views,
        help="views of each train photo without a vehicle (itself, mirrored, random crops)",
    )
    parser.add_argument(
        "--conditioned-views",
        type=int,
        default=hp.conditioned_views,
        help="further views of each train photo, each under a random phone condition "
        "(compression, dusk, noise, a colour cast; default 0: none)",
    )
    parser.add_argument(
        "--negative-conditioned-views",
        type=int,
        default=None,
        help="conditioned views of each train photo without a vehicle "
        "(default: --conditioned-views)",
    )
    parser.add_argument(
        "--refusals-like",
        type=Path,
        default=None,
        help="a gate .onnx: no vehicle source's val photos may be refused more often than "
        "it refuses them at the threshold its file names (with --max-refused)",
    )
    parser.add_argument(
        "--l2", type=float, nargs="+", default=list(hp.l2_strengths), help="L2 strengths to try"
    )
    parser.add_argument(
        "--max-refused",
        type=float,
        default=hp.max_refused,
        help="largest share of any vehicle source's val photos the threshold may refuse",
    )
    parser.add_argument("--seed", type=int, default=hp.seed, help="crop and re-split seed")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="default: CDAT_DATA_ROOT or ../shared/datasets"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for extraction")
    return parser


def hyperparameters(args: argparse.Namespace) -> GateHyperparameters:
    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: give a .onnx file path")
    if not 32 <= args.side <= 1024 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 1024")
    if args.negative_views < 1 or not 0.0 <= args.max_refused < 0.5:
        raise TrainingError("--negative-views must be >= 1 and --max-refused in [0, 0.5)")
    if args.conditioned_views < 0:
        raise TrainingError(f"--conditioned-views {args.conditioned_views}: 0 or more")
    if args.negative_conditioned_views is not None and args.negative_conditioned_views < 0:
        raise TrainingError(
            f"--negative-conditioned-views {args.negative_conditioned_views}: 0 or more"
        )
    if args.refusals_like is not None and not args.refusals_like.is_file():
        raise TrainingError(f"--refusals-like {args.refusals_like}: no such gate file")
    if not args.l2 or min(args.l2) <= 0:
        raise TrainingError("--l2: give positive strengths")
    return GateHyperparameters(
        side=args.side,
        taps=tuple(sorted(set(args.taps))),
        extract_taps=_extract_taps(args),
        negative_views=args.negative_views,
        conditioned_views=args.conditioned_views,
        negative_conditioned_views=args.negative_conditioned_views,
        refusals_like=None if args.refusals_like is None else str(args.refusals_like),
        l2_strengths=tuple(args.l2),
        max_refused=args.max_refused,
        seed=args.seed,
    )


def _extract_taps(args: argparse.Namespace) -> tuple[int, ...]:
    extract = tuple(sorted(set(args.extract_taps)))
    if extract and not set(args.taps) <= set(extract):
        raise TrainingError(f"--extract-taps {list(extract)} must include every --taps layer")
    return extract


def main(args: argparse.Namespace) -> int:
    import torch

    from training.gate_eval import gate_refusals
    from training.gate_net import export_onnx, load_gate_net
    from training.init_weights import resolve_init

    hp = hyperparameters(args)
    allowed = None  # read first: a file that is no gate fails before minutes of extraction
    if hp.refusals_like is not None:
        allowed = gate_refusals(Path(hp.refusals_like), "val", args.data_root, hp.seed)
    init = resolve_init(str(args.init))
    if init.path == "none":
        raise TrainingError("--init none: the gate cuts a pretrained model; name a checkpoint")
    torch.set_num_threads(max(1, args.threads))
    net = load_gate_net(Path(init.path), hp.extract_taps or hp.taps)
    columns = net.columns(hp.taps, hp.side)
    cache = FeatureCache.open(args.cache, Path(init.path), hp)
    started = time.perf_counter()
    train = gate_examples(net, "train", hp, cache, args.data_root).columns(columns)
    val = gate_examples(net, "val", hp, cache, args.data_root).columns(columns)
    extracted_s = time.perf_counter() - started
    head, threshold, selection = select_head(train, val, hp.l2_strengths, hp.max_refused, allowed)
    gate = load_gate_net(Path(init.path), hp.taps, head)
    metadata = {"names": "{0: 'vehicle'}", "threshold": repr(threshold),
                "description": f"CDAT vehicle gate: YOLO11n-seg layers to {max(hp.taps)}, "
                f"pooled at {list(hp.taps)}, logistic head"}  # fmt: skip
    export_onnx(gate, args.out, hp.side, metadata)
    parity = _parity(args.out, gate, head, hp, (net, columns))
    val_p = probabilities(head, val.features)
    report = {
        "hyperparameters": asdict(hp),
        "init": init.as_dict(),
        "threshold": threshold,
        "train_rows": source_counts(train),
        "val_rows": source_counts(val),
        "val_refused": refused_shares(val_p, val, threshold),
        "val_refused_counts": refused_counts(val_p, val, threshold),
        "val_refused_allowed": allowed,
        "onnx_parity_max_abs": parity,
        "onnx_bytes": args.out.stat().st_size,
        "feature_seconds": round(extracted_s, 1),
        **selection,
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_gate_run("training.vehicle_gate", args.out, hp, init.as_dict(), args.data_root)
    print(json.dumps({k: report[k] for k in ("threshold", "val_refused")}, indent=1))
    print(f"wrote {args.out} ({report['onnx_bytes'] / 1e6:.1f} MB, parity {parity:.1e})")
    return 0


def _parity(
    path: Path, gate: Any, head: Any, hp: GateHyperparameters, extractor: tuple[Any, np.ndarray]
) -> float:
    """ONNX against the extraction net's features (the columns the head was fitted on) and
    the numpy head, on a few generated inputs."""
    import torch

    net, columns = extractor
    inputs = np.random.default_rng(0).random((4, 3, hp.side, hp.side), dtype=np.float32)
    with torch.no_grad():
        feats = net.features(torch.from_numpy(inputs)).numpy().astype(np.float64)[:, columns]
    parity = check_parity(path, gate, probabilities(head, feats), inputs)
    if parity > 1e-3:
        raise TrainingError(f"{path}: ONNX and PyTorch disagree by {parity:.2e}")
    return parity


def write_gate_run(module: str, out: Path, hp: Any, init: dict[str, Any], data_root: Path | None
                   ) -> None:  # fmt: skip
    """`cdat_run.json` beside a gate file made by `module` (this tool or
    training/view_head.py), which `cdat models register --run` reads."""
    import shlex

    from training.gate_data import data_licences

    run = {
        "command": f"python -m {module} " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "task": "gate",
        "classes": ["vehicle"],
        "hyperparameters": asdict(hp),
        "init": init,
        "data": data_licences(data_root),
    }
    (out.parent / "cdat_run.json").write_text(json.dumps(run, indent=1) + "\n")


def source_counts(examples: Examples) -> dict[str, int]:
    """Rows per source."""
    names, counts = np.unique(examples.sources, return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts, strict=True)}


if __name__ == "__main__":
    run_script(main, get_args_parser())
