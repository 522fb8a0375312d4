"""The part-family stage: a classifier on the crop around each damage, and its verdict.

One small ONNX model (`python -m training.part_family` makes it): the part model's own
layers, their feature maps averaged over space, a linear head and a softmax over part
families (`cdat.taxonomy.PartFamily`, in the order its `families` metadata names). It sees
the damage with some of the panel around it (`inference.crops.damage_crop`): enough to tell
a wheel arch (a fender) from a door seam on a close-up, where the part masks are often wrong.
A stage trained with `--context` also reads the whole photo's pooled layers and where the
damage lies in it (`extras`: `inference.crops.photo_crop`'s features, then `box_position`),
once a photo: on a close-up, the crop alone often cannot tell which panel it is.
`cdat.part_family.choose_part` decides whether its answer overrules the masks'; this module
only measures and applies it.

    stage = FamilyStage.load(path, FamilyRule(0.7), backbone=part_model_path)
    damages = stage.refine(image, scale, damages, damage_masks, parts, part_masks)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cdat.findings import Box, DamageInstance, PartInstance
from cdat.part_family import FamilyRule, choose_part, part_by_type, side_in_view
from cdat.taxonomy import CarPart, PartFamily, Position, Side
from inference.crop_memo import CropMemo, remembered
from inference.crops import box_position, damage_crop, photo_crop
from inference.errors import ModelUnavailable
from inference.stage_bf16 import StagePrecision
from inference.stage_net import FEATURES, StageNet
from inference.stage_record import StageRecord, checked_file


def nearby_parts(
    damage_mask: np.ndarray, damage_box: Box, parts: Sequence[PartInstance], part_masks: np.ndarray
) -> list[CarPart]:
    """The photo's parts, nearest to one damage first: most overlap with its mask (on the
    analysis grid), then nearest box centre."""
    if not parts:
        return []
    overlap = part_masks.reshape(len(parts), -1).astype(np.float32) @ damage_mask.reshape(-1)
    cx, cy = (damage_box.x1 + damage_box.x2) / 2, (damage_box.y1 + damage_box.y2) / 2

    def distance(p: PartInstance) -> float:
        return float(np.hypot((p.box.x1 + p.box.x2) / 2 - cx, (p.box.y1 + p.box.y2) / 2 - cy))

    order = sorted(range(len(parts)), key=lambda k: (-float(overlap[k]), distance(parts[k])))
    seen: list[CarPart] = []
    for k in order:
        if parts[k].part not in seen:
            seen.append(parts[k].part)
    return seen


def side_seen(damage_box: Box, parts: Sequence[PartInstance]) -> Side | None:
    """The car's side a damage is on, from where it sits beside the nearest part seen across
    the middle of one end (`cdat.part_family.side_in_view`); None with no such part."""
    cx = (damage_box.x1 + damage_box.x2) / 2
    cy = (damage_box.y1 + damage_box.y2) / 2
    across = [
        p for p in parts if p.part.side is Side.CENTRE and p.part.position is not Position.MIDDLE
    ]
    if not across:
        return None

    def distance(p: PartInstance) -> float:
        return float(np.hypot((p.box.x1 + p.box.x2) / 2 - cx, (p.box.y1 + p.box.y2) / 2 - cy))

    end = min(across, key=distance)
    return side_in_view(end.part.position, cx < (end.box.x1 + end.box.x2) / 2)


@dataclass
class FamilyStage:
    net: StageNet
    side: int
    families: tuple[PartFamily, ...]
    rule: FamilyRule
    version: str = ""
    context: bool = False
    """Its head also reads the whole photo and the damage's place in it."""

    @classmethod
    def load(
        cls,
        path: Path,
        rule: FamilyRule,
        threads: int = 1,
        version: str = "",
        backbone: Path | None = None,
        precision: StagePrecision = "fp32",
    ) -> FamilyStage:
        """A stage file; one stored as a head reads `backbone`'s layers (the part model it
        was trained on: inference/stage_net.py), its network in `precision`."""
        net = StageNet.load(path, threads, "part-family stage", backbone, precision)
        names = net.metadata.get("families", "")
        try:
            families = stage_families([n for n in names.split(",") if n])
        except ValueError as exc:
            raise ModelUnavailable(f"part-family stage {path}: {exc}") from exc
        if not families or net.output_width != len(families) or len(set(families)) != len(families):
            raise ModelUnavailable(
                f"{path}: its `families` metadata does not name its outputs, once each"
            )
        return cls(net, net.side, families, rule, version or path.stem, reads_context(net, path))

    def probabilities(
        self, image: np.ndarray, boxes: Sequence[Box], memo: CropMemo | None = None
    ) -> np.ndarray:
        """(len(boxes), families) probabilities; boxes in `image` pixels. `memo` keeps the
        photo's answers for its second analysis (inference/crop_memo.py)."""
        keys = [(id(self), box) for box in boxes]
        return remembered(memo, keys, lambda ks: self._probabilities(image, [boxes[k] for k in ks]))

    def _probabilities(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        if not boxes:
            return np.zeros((0, len(self.families)), np.float32)
        crops = np.stack([damage_crop(image, b, self.side) for b in boxes])
        if not self.context:
            return self.net.run(crops)
        height, width = image.shape[:2]
        photo, pooled = self.net.pooled_with_photo(photo_crop(image, self.side), crops)
        where = np.array([box_position(b, width, height) for b in boxes], np.float32)
        return self.net.run_head(pooled, np.hstack([np.repeat(photo, len(boxes), 0), where]))

    def refine(
        self,
        image: np.ndarray,
        scale: tuple[float, float],
        damages: tuple[DamageInstance, ...],
        damage_masks: np.ndarray,
        parts: tuple[PartInstance, ...],
        part_masks: np.ndarray,
        memo: CropMemo | None = None,
    ) -> tuple[DamageInstance, ...]:
        """Each damage on the part `choose_part` gives; boxes are photo pixels, `scale`
        maps `image` to the photo; `memo`: `probabilities`."""
        sx, sy = scale
        boxes = [Box(d.box.x1 / sx, d.box.y1 / sy, d.box.x2 / sx, d.box.y2 / sy) for d in damages]
        table = self.probabilities(image, boxes, memo)
        out = []
        for k, damage in enumerate(damages):
            probabilities = dict(zip(self.families, map(float, table[k]), strict=True))
            near = nearby_parts(damage_masks[k], damage.box, parts, part_masks)
            side = side_seen(damage.box, parts)
            part = choose_part(damage.part, probabilities, near, self.rule, side)
            out.append(
                damage
                if part is damage.part
                else moved(damage, part, parts, part_masks, damage_masks[k])
            )
        return tuple(out)


def stage_families(names: Sequence[str]) -> tuple[PartFamily, ...]:
    """The families a stage's outputs name. One made before fenders were listed names no
    `fender`: its `unlisted_panel` output learnt from the close-up sets' `Fender` labels
    alone (their configs mapped nothing else there), so it is read as `fender`."""
    families = tuple(PartFamily(n) for n in names)
    if PartFamily.FENDER in families:
        return families
    return tuple(PartFamily.FENDER if f is PartFamily.UNLISTED_PANEL else f for f in families)


def reads_context(net: StageNet, path: Path) -> bool:
    """Whether the stage's head reads `extras`: the photo's pooled layers (as wide as a
    crop's) and the four numbers of `box_position`."""
    width, crop_width = net.input_width("extras"), net.input_width(FEATURES)
    if width is None:
        return False
    if net.body is None or crop_width is None or width != crop_width + 4:
        raise ModelUnavailable(
            f"part-family stage {path}: its `extras` are not the photo's pooled layers and "
            "the damage's position (a head trained by training.part_family --context)"
        )
    return True


def moved(
    damage: DamageInstance,
    part: CarPart | None,
    parts: Sequence[PartInstance],
    part_masks: np.ndarray,
    damage_mask: np.ndarray,
) -> DamageInstance:
    """The damage on `part`, its coverage measured against that part's masks (0 where the
    part was placed without being seen)."""
    seen = [k for k, p in enumerate(parts) if p.part is part]
    if part is None or not seen:
        return replace(damage, part=part, part_coverage=0.0)
    area = part_masks[seen].any(0)
    coverage = float((area & damage_mask).sum() / max(float(area.sum()), 1.0))
    return replace(damage, part=part, part_coverage=round(min(coverage, 1.0), 4))


def placed_by_type(
    damages: tuple[DamageInstance, ...],
    damage_masks: np.ndarray,
    parts: Sequence[PartInstance],
    part_masks: np.ndarray,
) -> tuple[DamageInstance, ...]:
    """Each damage the masks put on no part, on the part its type says it is on where it
    says one (`cdat.part_family.part_by_type`); masks on the analysis grid, in order."""
    out = []
    for k, damage in enumerate(damages):
        if damage.part is not None:
            out.append(damage)
            continue
        near = nearby_parts(damage_masks[k], damage.box, parts, part_masks)
        part = part_by_type(damage.damage_type, None, near, side_seen(damage.box, parts))
        out.append(
            damage if part is None else moved(damage, part, parts, part_masks, damage_masks[k])
        )
    return tuple(out)


def load_family_stage(
    model_dir: Path,
    record: StageRecord[FamilyRule],
    backbone: Path,
    threads: int = 1,
    precision: StagePrecision = "fp32",
) -> FamilyStage:
    """A part model's stage from its registry record, checked against its checksum;
    `backbone` is the part model's file; its network in `precision`."""
    path = checked_file(model_dir, record, "part-family stage")
    return FamilyStage.load(path, record.rule, threads, path.stem, backbone, precision)
