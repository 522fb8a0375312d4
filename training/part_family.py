"""Train the part-family stage (inference/part_family.py): which kind of part a damage is on.

The part model's own layers (`--parts`, its .pt) are kept frozen; their feature maps at
`--taps`, averaged over space, feed a class-balanced softmax regression over part families.
Examples are the labelled damaged regions of the part-named sets' train splits
(`car-parts-damage`, `damaged-parts`: each region names its part, `Fender` an unlisted
panel), each cropped as serving crops a detected damage (`inference.crops.damage_crop`)
and also mirrored (a family has no side). With `--detections`, the damage model's own
detections on those train photos are examples too, each named by the family of the labelled
region it overlaps (serving crops a detection's box, often wider or narrower than the
outline: the train pass of `training.damage_verifier`, shared through its `--cache`). With
`--context` the head also reads the whole photo's pooled layers and where the region lies in
it (measured on val by bench/bench_family_context.py: about eight points of crop accuracy on
close-ups, whose crop alone often cannot tell a fender from a door). The L2
strength is chosen on the val splits (mean
of the per-source accuracy); the threshold at which the stage overrules the part masks is
chosen afterwards, on a claim pass (`python -m training.family_sweep`). The result is the
head as an ONNX file (inference/stage_net.py: served on the pooled layers of `--backbone`,
the part model's own .onnx) and a report beside it::

    python -m training.part_family --out runs/family/part-family.onnx
    python -m training.part_family --out runs/family/a.onnx --side 160 --taps 4 6 10
    python -m training.part_family --out runs/family/d.onnx --detections
    python -m training.part_family --out runs/family/c.onnx --context --no-mirror
    python -m training.part_family --out runs/family/f.onnx \\
        --with-data datasets/cdat-feedback-families.yaml
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import Box
from cdat.taxonomy import PartFamily
from training.closeup import held_out_photos, part_families
from training.dataconfig import REPO_ROOT, load_dataset_config
from training.errors import TrainingError, run_script
from training.eval_report import check_json_out
from training.region_features import context_extras, extract
from training.softmax_head import SoftmaxHead, fit_head

SOURCES = ("car-parts-damage", "damaged-parts")
DEFAULT_PARTS = REPO_ROOT / "inference" / "models" / "parts-seg-n-20261206b.pt"


@dataclass
class FamilyHyperparameters:
    side: int = 224
    """Crop side in pixels."""
    taps: tuple[int, ...] = (4, 6, 10, 13, 16, 19, 22)
    """Layers whose maps are pooled: backbone (4, 6, 10) and neck (13-22); measured on val,
    the neck adds about 0.02 accuracy on car-parts-damage."""
    l2_strengths: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2)
    """Candidate L2 penalties on the standardised weights, chosen on val."""
    mirrored: bool = True
    """Also learn from each crop mirrored."""
    detections: bool = False
    """Also learn from the damage model's detections that overlap a labelled region."""
    detection_iou: float = 0.3
    """Mask IoU at which a detection is named by the region it overlaps (the claim figures' bar)."""
    context: bool = False
    """The head also reads the whole photo's pooled layers and the region's position."""
    seed: int = 0
    """Seed of the sets' re-split (as converted)."""


@dataclass(frozen=True)
class Region:
    image: Path
    box: Box
    """Normalised to the photo (0..1)."""
    family: PartFamily
    source: str


def regions(
    split: str, seed: int, data_root: Path | None, more: Sequence[Path] = ()
) -> list[Region]:
    """Every labelled region of the part-named sets in one split, and of the `more` configs
    given (`--with-data`: an adjusters' export, `datasets/cdat-feedback-families.yaml`)."""
    out = []
    configs = [REPO_ROOT / "datasets" / f"{source}.yaml" for source in SOURCES]
    for config in [*configs, *more]:
        source = load_dataset_config(config, data_root).name
        families = part_families(config)
        for image, instances in held_out_photos(config, split, seed, data_root):
            for name, polygon in instances:
                xy = np.asarray(polygon, np.float64).reshape(-1, 2)
                if len(xy) < 3:
                    continue
                (x1, y1), (x2, y2) = xy.min(0), xy.max(0)
                out.append(Region(image, Box(x1, y1, x2, y2), families[name], source))
    return out


def detection_regions(seed: int, data_root: Path | None, cache: Path, iou: float) -> list[Region]:
    """The damage model's detections on the part-named train photos (the verifier's train
    pass), each named by the family of the labelled region it best overlaps at `iou` or more."""
    from training.claim_eval import outlines_of
    from training.damage_verifier import VerifierHyperparameters
    from training.outline_tally import damage_masks, mask_iou
    from training.train_pass import train_pass, train_photos

    hp = VerifierHyperparameters(seed=seed)
    photos = train_photos(hp, data_root)  # all of them: the verifier reads the same cache
    analyses = train_pass(photos, hp.pass_conf, cache)
    out = []
    for photo in (p for p in photos if p.source in SOURCES):
        analysis = analyses[str(photo.path)]
        families = part_families(REPO_ROOT / "datasets" / f"{photo.source}.yaml")
        outlines = outlines_of(photo.instances, (analysis.height, analysis.width), families)
        for damage, mask in zip(analysis.damages, damage_masks(analysis), strict=True):
            best = max(outlines, key=lambda o: mask_iou(mask, o.mask), default=None)
            if best is None or best.family is None or mask_iou(mask, best.mask) < iou:
                continue
            b, w, h = damage.box, analysis.width, analysis.height
            box = Box(b.x1 / w, b.y1 / h, b.x2 / w, b.y2 / h)
            out.append(Region(photo.path, box, best.family, photo.source))
    return out


def accuracy_report(
    head: SoftmaxHead, features: np.ndarray, items: Sequence[Region], families: Sequence[PartFamily]
) -> dict[str, Any]:
    """Accuracy per source and per family on labelled crops (not yet a claim's figure)."""
    truth = np.array([families.index(r.family) for r in items])
    sources = np.array([r.source for r in items])
    return crop_accuracy(head.probabilities(features).argmax(1), truth, sources, families)


def crop_accuracy(
    guess: np.ndarray, truth: np.ndarray, sources: np.ndarray, families: Sequence[PartFamily]
) -> dict[str, Any]:
    """Accuracy per source and per family of labelled crops, from each crop's guessed and
    true family index and its source."""
    out: dict[str, Any] = {}
    for source in dict.fromkeys([*SOURCES, *map(str, sources)]):
        keep = sources == source
        if not keep.any():
            continue
        right = guess[keep] == truth[keep]
        out[source] = {
            "regions": int(keep.sum()),
            "accuracy": round(float(right.mean()), 4),
            "per_family": {
                f.value: round(float(right[truth[keep] == k].mean()), 4)
                for k, f in enumerate(families)
                if (truth[keep] == k).any()
            },
        }
    return out


def regions_per_source(items: Sequence[Region]) -> dict[str, int]:
    return dict(Counter(r.source for r in items))


def check_more_data(configs: Sequence[Path]) -> None:
    """`--with-data`: each a part-named data set config (its `part_families` read here)."""
    for config in configs:
        if not config.is_file():
            raise TrainingError(f"--with-data {config}: no such data set config")
        part_families(config)


def mean_accuracy(report: dict[str, Any]) -> float:
    """The mean of a `crop_accuracy` report's per-source accuracies (what a run is chosen by)."""
    return float(np.mean([r["accuracy"] for r in report.values()]))


class FamilyNetFactory:
    """The exported net: the part model's pooled layers, a linear layer, a softmax."""

    @staticmethod
    def build(parts: Path, taps: tuple[int, ...], head: SoftmaxHead) -> Any:
        import torch
        from torch import nn

        from training.gate_net import load_gate_net

        body = load_gate_net(parts, taps)
        weights, bias = head.folded()

        class FamilyNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.body = body
                self.linear = nn.Linear(weights.shape[0], weights.shape[1])
                with torch.no_grad():
                    self.linear.weight.copy_(torch.from_numpy(weights.T).float())
                    self.linear.bias.copy_(torch.from_numpy(bias).float())

            def head(self, features: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
                return torch.softmax(self.linear(torch.cat([features, *extras], dim=1)), dim=1)

            def forward(self, x: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
                return self.head(self.body.features(x), *extras)

        return FamilyNet().float().eval()


def add_detection_options(parser: argparse.ArgumentParser) -> None:
    """`--detections` and the train pass it reads: the same options for either stage."""
    parser.add_argument("--detections", action="store_true",
                        help="also learn from the damage model's detections on the train "
                        "photos, named by the labelled region each overlaps")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=Path("runs/verifier/train-pass.pkl"),
                        help="the damage model's train pass (.pkl, shared with "
                        "training.damage_verifier), with --detections")  # fmt: skip


def check_detection_options(args: argparse.Namespace) -> None:
    """A train pass is written to `--cache` after minutes of work: a folder there is refused
    before any."""
    if args.detections and args.cache.is_dir():
        raise TrainingError(f"--cache {args.cache}: is a folder; name the pass's .pkl file")


def add_more_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-data", type=Path, action="append", default=[], metavar="CONFIG",
                        help="a part-named data set config more to learn from (its train "
                        "split) and to choose on (its val split), e.g. "
                        "datasets/cdat-feedback-families.yaml after `cdat feedback export`; "
                        "repeat for more")  # fmt: skip


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    hp = FamilyHyperparameters()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--out", type=Path, required=True, help="the stage's .onnx file to write")
    parser.add_argument("--parts", type=Path, default=DEFAULT_PARTS,
                        help="the part model's Ultralytics .pt whose layers are used")  # fmt: skip
    parser.add_argument("--backbone", type=Path, default=None,
                        help="that model's served .onnx, which the stage's head reads "
                        "(default: the .onnx beside --parts)")  # fmt: skip
    parser.add_argument("--taps", type=int, nargs="+", default=list(hp.taps),
                        help="layers whose feature maps are pooled")  # fmt: skip
    parser.add_argument("--side", type=int, default=hp.side, help="crop side in pixels")
    parser.add_argument("--l2", type=float, nargs="+", default=list(hp.l2_strengths),
                        help="candidate L2 strengths, chosen on val")  # fmt: skip
    parser.add_argument("--no-mirror", action="store_true", help="do not add mirrored crops")
    add_detection_options(parser)
    parser.add_argument("--context", action="store_true",
                        help="the head also reads the whole photo's pooled layers and where "
                        "the damage lies in it")  # fmt: skip
    parser.add_argument("--seed", type=int, default=hp.seed, help="the sets' re-split seed")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for extraction")
    add_more_data_option(parser)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="data sets folder (default: $CDAT_DATA_ROOT)")  # fmt: skip
    return parser


def main(args: argparse.Namespace) -> int:
    import torch

    from training.gate_net import load_gate_net
    from training.stage_head import export_head

    if args.out.suffix != ".onnx":
        raise TrainingError(f"--out {args.out}: name an .onnx file")
    check_json_out(args.out.with_suffix(".report.json"))
    if not args.parts.is_file():
        raise TrainingError(f"--parts {args.parts}: no such checkpoint")
    backbone = Path(args.backbone or args.parts.with_suffix(".onnx"))
    if not backbone.is_file():
        raise TrainingError(f"--backbone {backbone}: no such file (the served .onnx)")
    if not 32 <= args.side <= 640 or args.side % 32:
        raise TrainingError(f"--side {args.side}: a multiple of 32 from 32 to 640")
    if any(v <= 0 for v in args.l2):
        raise TrainingError("--l2: strengths must be above 0")
    check_detection_options(args)
    hp = FamilyHyperparameters(args.side, tuple(sorted(set(args.taps))), tuple(args.l2),
                               not args.no_mirror, args.detections, context=args.context,
                               seed=args.seed)  # fmt: skip
    torch.set_num_threads(max(1, args.threads))
    net = load_gate_net(args.parts, hp.taps)
    started = time.perf_counter()
    check_more_data(args.with_data)
    train, val = (regions(s, hp.seed, args.data_root, args.with_data) for s in ("train", "val"))
    if not train or not val:
        raise TrainingError("no labelled regions: is $CDAT_DATA_ROOT set to the shared data sets?")
    if hp.detections:
        train += detection_regions(hp.seed, args.data_root, args.cache, hp.detection_iou)
    families = [f for f in PartFamily if any(r.family is f for r in train)]
    x_train = extract(net, train, hp.side, hp.mirrored)
    y_train = np.array([families.index(r.family) for r in train] * (2 if hp.mirrored else 1))
    x_val = extract(net, val, hp.side, False)
    extras = 0
    if hp.context:  # the photo's features are as wide as a crop's
        extras = x_train.shape[1] + 4
        x_train = np.hstack([x_train, context_extras(net, train, hp.side, hp.mirrored)])
        x_val = np.hstack([x_val, context_extras(net, val, hp.side, False)])
    trials = []
    for l2 in hp.l2_strengths:
        head = fit_head(x_train, y_train, len(families), l2)
        trials.append((l2, head, accuracy_report(head, x_val, val, families)))
    l2, head, chosen = max(trials, key=lambda t: (mean_accuracy(t[2]), t[0]))
    model = FamilyNetFactory.build(args.parts, hp.taps, head)
    metadata = {"families": ",".join(f.value for f in families), "side": str(hp.side),
                "description": f"CDAT part-family stage: {args.parts.name} layers pooled at "
                f"{list(hp.taps)}, softmax head"}  # fmt: skip
    if extras:
        metadata["extras"] = "photo_features,box_position"
        metadata["description"] += " also reading the whole photo and the damage's position"
    parity = export_head(model, args.out, backbone, metadata, "families", extras)
    report = {
        "hyperparameters": asdict(hp),
        "parts": str(args.parts),
        "families": [f.value for f in families],
        "train_regions": regions_per_source(train),
        "l2": l2,
        "val": chosen,
        "trials": {str(t[0]): t[2] for t in trials},
        "backbone": str(backbone),
        "onnx_parity_max_abs": parity,
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python -m training.part_family " + " ".join(map(shlex.quote, sys.argv[1:])),
    }
    args.out.with_suffix(".report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"l2": l2, "val": chosen}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
