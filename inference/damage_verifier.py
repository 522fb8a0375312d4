"""The damage verifier: is a detected damage damage at all? (cdat/verified.py says why.)

One small ONNX model (`python -m training.damage_verifier` makes it) with two inputs: the
crop around each damage (`inference.crops.damage_crop`), which the damage model's own first
layers pool into features, and a few numbers about the detection (`verifier_extras`: its
score, its size in the frame, how many parts the photo shows and the largest one's size,
its type); one trained with `--cluster` also reads how many of the photo's other detections
cover the same place and the surest of them (`cluster_extras`: real damage draws several
overlapping guesses, a reflection one faint one); one trained with `--context` also reads
the whole photo's pooled layers (an intact car's lettering looks like a scratch in a crop,
less so beside the whole car). The extras a file reads are named in its metadata. A small
multilayer perceptron over both ends in a sigmoid: the probability that the detection
overlaps labelled damage. `cdat.verified.verified` decides what is kept.

    verifier = load_verifier(model_dir, entry.served_verifier, model_dir / entry.file)
    keep = verifier.kept(image, scale, damages, parts, width, height, base_kept)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.taxonomy import DamageType
from cdat.verified import VerifierRule, verified
from inference.crop_memo import CropMemo, remembered
from inference.crops import damage_crop, photo_crop
from inference.errors import ModelUnavailable
from inference.stage_bf16 import StagePrecision
from inference.stage_net import FEATURES, StageNet
from inference.stage_record import StageRecord, checked_file

BASE_EXTRAS = ("score_logit", "log_area_share", "log_parts", "largest_part_share")
CLUSTER_EXTRAS = ("log_overlapping", "overlapping_score_logit")
OVERLAPPING = 0.5
"""Two detections cover the same place where their intersection is at least this share of
the smaller box (one box inside or mostly inside the other, whatever their sizes)."""


TYPE_NAMES = frozenset(t.value for t in DamageType)
"""What a verifier's `classes` may name: the type one-hot compares each damage's type."""


def extra_names(classes: Sequence[str], cluster: bool = False) -> tuple[str, ...]:
    """The extras in the order a verifier reads them (those trained before `--cluster`
    existed read the first layout)."""
    return (*BASE_EXTRAS, *(f"type_{c}" for c in classes), *(CLUSTER_EXTRAS if cluster else ()))


def _logit(score: float) -> float:
    score = min(max(score, 1e-4), 1 - 1e-4)
    return math.log(score / (1 - score))


def verifier_extras(
    damage: DamageInstance,
    parts: Sequence[PartInstance],
    width: int,
    height: int,
    classes: Sequence[str],
) -> list[float]:
    """The numbers beside the crop, in `extra_names(classes)` order; boxes in photo pixels."""
    frame = max(1.0, float(width * height))
    largest = max((p.box.area for p in parts), default=0.0) / frame
    return [
        _logit(damage.confidence),
        math.log(damage.box.area / frame + 1e-5),
        math.log1p(len(parts)),
        largest,
        *(float(damage.damage_type.value == c) for c in classes),
    ]


def covers_same_place(a: Box, b: Box) -> bool:
    return a.intersection_area(b) >= OVERLAPPING * max(min(a.area, b.area), 1e-6)


def cluster_extras(damage: DamageInstance, found: Sequence[DamageInstance]) -> list[float]:
    """`CLUSTER_EXTRAS` of one damage among every detection of its photo (`found`, itself
    among them or not): how many others cover the same place, and the surest score there."""
    others = [d for d in found if d is not damage and covers_same_place(damage.box, d.box)]
    surest = max((d.confidence for d in others), default=0.0)
    return [math.log1p(len(others)), _logit(max(surest, damage.confidence))]


@dataclass
class DamageVerifier:
    net: StageNet
    side: int
    classes: tuple[str, ...]
    rule: VerifierRule
    version: str = ""
    context: bool = False
    """Its extras end with the whole photo's pooled layers (`inference.crops.photo_crop`)."""
    cluster: bool = False
    """Its named extras end with `CLUSTER_EXTRAS`."""
    closeup: DamageVerifier | None = None
    """Where given, the verifier that reads every photo that is not a whole-car view, at the
    same base threshold: one taught intact close-ups tells their marks from damage far better,
    but flags more intact cars seen whole, which this one (a head on the damage model's
    layers) holds (docs/model-experiments.md, "A verifier by view")."""

    @classmethod
    def load(
        cls,
        path: Path,
        rule: VerifierRule,
        threads: int = 1,
        version: str = "",
        backbone: Path | None = None,
        precision: StagePrecision = "fp32",
    ) -> DamageVerifier:
        """A verifier file; one stored as a head reads `backbone`'s layers (the damage
        model it was trained on: inference/stage_net.py), its network in `precision`
        (inference/stage_bf16.py)."""
        net = StageNet.load(path, threads, "damage verifier", backbone, precision)
        classes = tuple(n for n in net.metadata.get("classes", "").split(",") if n)
        cluster = _reads_cluster(net.metadata, classes, path)
        named, width = len(extra_names(classes, cluster)), net.input_width("extras")
        # a head trained with --context also reads the photo's layers, as wide as a crop's
        context = net.body is not None and width == named + (net.input_width(FEATURES) or 0)
        if not classes or (width != named and not context):
            raise ModelUnavailable(f"{path}: its `classes` metadata does not match its `extras`")
        unknown = [c for c in classes if c not in TYPE_NAMES]
        if unknown:  # the type one-hot compares damage types: it would be all zero
            raise ModelUnavailable(
                f"{path}: its classes {', '.join(unknown)} are not damage types "
                f"({', '.join(sorted(TYPE_NAMES))}): trained on a model whose classes are not"
            )
        return cls(net, net.side, classes, rule, version or path.stem, context, cluster)

    def probabilities(
        self,
        image: np.ndarray,
        scale: tuple[float, float],
        damages: Sequence[DamageInstance],
        parts: Sequence[PartInstance],
        width: int,
        height: int,
        found: Sequence[DamageInstance] | None = None,
        memo: CropMemo | None = None,
    ) -> np.ndarray:
        """The verifier's probability for each damage; boxes in photo pixels, `scale` maps
        `image` to the photo. `found` is every detection of the photo at the threshold the
        model is served at (default: `damages`), which a `cluster` verifier counts. `memo`
        keeps the photo's answers for its second analysis (inference/crop_memo.py); a
        `cluster` verifier's answer depends on the other damages, so it keeps none."""
        if not damages:
            return np.zeros(0, np.float32)
        if self.cluster:
            memo = None
        keys = [(id(self), d.box, d.confidence, d.damage_type) for d in damages]

        def compute(indices: list[int]) -> np.ndarray:
            asked = [damages[k] for k in indices]
            return self._probabilities(image, scale, asked, parts, width, height, found)

        return remembered(memo, keys, compute)

    def _probabilities(
        self,
        image: np.ndarray,
        scale: tuple[float, float],
        damages: Sequence[DamageInstance],
        parts: Sequence[PartInstance],
        width: int,
        height: int,
        found: Sequence[DamageInstance] | None,
    ) -> np.ndarray:
        if not damages:
            return np.zeros(0, np.float32)
        neighbours = damages if found is None else found
        sx, sy = scale
        crops = np.stack(
            [
                damage_crop(image, Box(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy),
                            self.side)
                for d in damages
            ]
        )  # fmt: skip
        extras = np.array(
            [
                verifier_extras(d, parts, width, height, self.classes)
                + (cluster_extras(d, neighbours) if self.cluster else [])
                for d in damages
            ],
            np.float32,
        )
        if not self.context:
            return np.asarray(self.net.run(crops, extras), np.float32).reshape(-1)
        photo, pooled = self.net.pooled_with_photo(photo_crop(image, self.side), crops)
        extras = np.hstack([extras, np.repeat(photo, len(damages), 0)])
        return np.asarray(self.net.run_head(pooled, extras), np.float32).reshape(-1)

    def kept(
        self,
        image: np.ndarray,
        scale: tuple[float, float],
        damages: Sequence[DamageInstance],
        parts: Sequence[PartInstance],
        size: tuple[int, int],
        base_kept: Sequence[bool],
        whole_car_view: bool = False,
        memo: CropMemo | None = None,
    ) -> list[int]:
        """Indices of the damages the rule keeps (`size` is the photo's width, height;
        `whole_car_view`: cdat/verified.py). Only damages whose fate the answer decides are
        looked at: with `min_base_probability` 0, what the base keeps stays whatever the
        verifier says. A photo that is no whole-car view is read by `closeup` where given."""
        if self.closeup is not None and not whole_car_view:
            return self.closeup.kept(image, scale, damages, parts, size, base_kept, memo=memo)
        asked = [
            k for k, base in enumerate(base_kept) if not base or self.rule.min_base_probability
        ]
        p = np.ones(len(damages), np.float32)
        p[asked] = self.probabilities(
            image, scale, [damages[k] for k in asked], parts, *size, found=damages, memo=memo
        )
        kept = {id(d) for d in verified(damages, p.tolist(), base_kept, self.rule, whole_car_view)}
        return [k for k, d in enumerate(damages) if id(d) in kept]


def _reads_cluster(metadata: dict[str, str], classes: Sequence[str], path: Path) -> bool:
    """Whether the file's named extras are the layout with `CLUSTER_EXTRAS`; a file that
    names none (or its classes' plain layout) reads the first layout."""
    named = tuple(n for n in metadata.get("extras", "").split(",") if n)
    if not named or named == extra_names(classes):
        return False
    if named == extra_names(classes, cluster=True):
        return True
    raise ModelUnavailable(f"{path}: its extras ({', '.join(named)}) are no layout this code reads")


def load_verifier(
    model_dir: Path,
    record: StageRecord[VerifierRule],
    backbone: Path,
    threads: int = 1,
    closeup: StageRecord[VerifierRule] | None = None,
    precision: StagePrecision = "fp32",
) -> DamageVerifier:
    """A damage model's verifier from its registry record, checked against its checksum;
    `backbone` is the damage model's file; `closeup`, the record of the verifier that reads
    photos which are no whole-car view (None: this one reads every photo); both networks in
    `precision`."""
    path = checked_file(model_dir, record, "damage verifier")
    verifier = DamageVerifier.load(path, record.rule, threads, path.stem, backbone, precision)
    if closeup is not None:
        near = checked_file(model_dir, closeup, "close-up damage verifier")
        verifier.closeup = DamageVerifier.load(
            near, closeup.rule, threads, near.stem, backbone, precision
        )
    return verifier
