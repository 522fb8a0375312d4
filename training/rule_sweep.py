"""Candidate damage rules scored from cached analyses, and the one chosen (`training.claim_rules`).

Each photo's regions get their mask IoU with each damage once (`build_records`); a candidate
rule then only decides which damages a photo keeps, and `score` turns that into the figures
`training.claim_eval.claim_report` gives, without rasterising anything again.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cdat.findings import PhotoAnalysis
from cdat.whole_car import WholeCarRule, apply_whole_car_rule
from training.claim_eval import (
    DATASETS,
    INTACT_CLOSEUPS,
    OUTLINED,
    PART_NAMED,
    headline,
    outlines_of,
    part_families,
    photo_grade,
    refused_unpriced,
    typed_photos,
)
from training.closeup import held_out_photos
from training.errors import TrainingError
from training.intact_closeups import intact_closeups
from training.no_vehicle import no_vehicle_split
from training.outline_tally import RECALL_IOU, Outline, OutlineTally, _share, damage_masks, mask_iou

Rule = Callable[[PhotoAnalysis], PhotoAnalysis]


def photo_key(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@dataclass(frozen=True)
class PhotoRecord:
    """One photo of a source: its cached analysis, its labelled regions, and each region's
    mask IoU with each damage (regions x damages), computed once for every candidate."""

    source: str
    name: str
    analysis: PhotoAnalysis
    outlines: tuple[Outline, ...] = ()
    ious: np.ndarray | None = None
    path: Path | None = None
    """The photo, for sweeps that look at it again (`training.family_sweep`)."""
    jpeg: bytes | None = None
    """The photo itself where it is no file (an intact close-up window)."""

    def photo_bytes(self) -> bytes:
        if self.jpeg is not None:
            return self.jpeg
        if self.path is None:
            raise TrainingError(f"{self.name}: the pass record names no photo file")
        return self.path.read_bytes()


def _record(source: str, image: Path, analysis: PhotoAnalysis, outlines: list[Outline]) -> Any:
    masks = damage_masks(analysis)
    ious = np.array([[mask_iou(m, o.mask) for m in masks] for o in outlines], dtype=np.float32)
    light = tuple(replace(o, mask=np.zeros((0, 0), bool)) for o in outlines)  # masks done with
    return PhotoRecord(source, image.name, analysis, light, ious.reshape(len(outlines), -1), image)


def build_records(
    cache: dict[str, PhotoAnalysis], split: str, seed: int, root: Path
) -> list[PhotoRecord]:
    """Every photo `claim_report` measures, in its order, answered from the cache."""

    def cached(image: Path) -> PhotoAnalysis:
        return cache[photo_key(image.read_bytes())]

    records = []
    for source in OUTLINED:
        config = DATASETS / f"{source}.yaml"
        families = part_families(config) if source in PART_NAMED else None
        photos: Iterable[tuple[Path, list]] = (
            held_out_photos(config, split, seed, root)
            if source in PART_NAMED
            else typed_photos(config, split, seed, root)
        )
        for image, instances in photos:
            analysis = cached(image)
            grade = photo_grade(image) if source == "damaged-parts" else None
            shape = (analysis.height, analysis.width)
            outlines = outlines_of(instances, shape, families, grade)
            records.append(_record(source, image, analysis, outlines))
    cars = list(typed_photos(DATASETS / "car-parts.yaml", split, seed, root))
    for image, _ in cars:
        records.append(PhotoRecord("car-parts", image.name, cached(image), path=image))
    for closeup in intact_closeups(cars):
        answer = cache.get(photo_key(closeup.jpeg))
        if answer is None:
            raise TrainingError(
                f"the pass holds no answer for the intact close-up {closeup.name}: it was made "
                "before close-ups were measured; make it again (training.claim_rules --pass)"
            )
        records.append(PhotoRecord(INTACT_CLOSEUPS, closeup.name, answer, jpeg=closeup.jpeg))
    for photo in no_vehicle_split(root, split):
        records.append(
            PhotoRecord("no-vehicle", photo.path.name, cached(photo.path), path=photo.path)
        )
    return records


def score(records: Sequence[PhotoRecord], rule: Rule) -> dict[str, Any]:
    """`claim_report`'s figures for the analyses `rule` leaves, from the records alone."""
    tallies = {source: OutlineTally() for source in OUTLINED}
    reported = dict.fromkeys(OUTLINED, 0)
    matched = dict.fromkeys(OUTLINED, 0)
    intact: dict[str, list[str]] = {"car-parts": [], INTACT_CLOSEUPS: []}
    cars = dict.fromkeys(intact, 0)
    nonvehicle = refused = 0
    for rec in records:
        analysis = rule(rec.analysis)
        if rec.source in intact:
            cars[rec.source] += 1
            intact[rec.source] += [rec.name] if analysis.damages else []
        elif rec.source == "no-vehicle":
            nonvehicle += 1
            refused += refused_unpriced(analysis)
        else:
            tally = tallies[rec.source]
            tally.photos += 1
            tally.photos_with_damage += bool(analysis.damages)
            tally.damages += len(analysis.damages)
            tally.refused += analysis.refused_no_vehicle
            kept = {id(d) for d in analysis.damages}
            index = [i for i, d in enumerate(rec.analysis.damages) if id(d) in kept]
            assert rec.ious is not None
            for outline, ious in zip(rec.outlines, rec.ious, strict=True):
                tally.add_outline_ious(outline, analysis, ious[index].tolist())
            # Precision on damage photos: what lowering a close-up threshold would cost.
            reported[rec.source] += len(index)
            if index and len(rec.outlines):
                matched[rec.source] += int((rec.ious[:, index].max(0) >= RECALL_IOU).sum())
    per_source: dict[str, Any] = {}
    for source, tally in tallies.items():
        per_source[source] = tally.report()
        per_source[source]["damage_precision_iou30"] = _share(matched[source], reported[source])
        if source in PART_NAMED:
            per_source[source]["closeups_refused"] = per_source[source]["refused_no_vehicle"]
    for source, figure in (("car-parts", "intact_photos_with_damage"),
                           (INTACT_CLOSEUPS, "intact_closeups_with_damage")):  # fmt: skip
        per_source[source] = {
            "photos": cars[source],
            figure: _share(len(intact[source]), cars[source]),
            "damaged_photo_names": sorted(intact[source]),
        }
    per_source["no-vehicle"] = {
        "photos": nonvehicle,
        "non_vehicle_refused": refused / nonvehicle if nonvehicle else None,
    }
    return {**headline(per_source), "per_source": per_source}


def at_conf(conf: float) -> Rule:
    """A global threshold, as `cdat claims --damage-conf` sweeps it."""

    def rule(analysis: PhotoAnalysis) -> PhotoAnalysis:
        kept = tuple(d for d in analysis.damages if d.confidence >= conf)
        return analysis if kept == analysis.damages else replace(analysis, damages=kept)

    return rule


def with_whole_car(conf: float, whole_car: WholeCarRule | None) -> Rule:
    """The served threshold `conf`, then the whole-car rule (if any), as serving applies them."""
    base = at_conf(conf)
    if whole_car is None:
        return base
    return lambda analysis: apply_whole_car_rule(base(analysis), whole_car)


@dataclass(frozen=True)
class Candidate:
    conf: float
    whole_car: WholeCarRule | None = None

    @property
    def rule(self) -> Rule:
        return (
            at_conf(self.conf)
            if self.whole_car is None
            else with_whole_car(self.conf, self.whole_car)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "conf": self.conf,
            "whole_car": None if self.whole_car is None else self.whole_car.to_record(),
        }


def candidates(
    confs: Sequence[float],
    min_parts: Sequence[int],
    max_part_shares: Sequence[float],
    whole_car_confs: Sequence[float],
    drop_off_part: Sequence[bool] = (False, True),
) -> list[Candidate]:
    """Global thresholds alone, and each with every whole-car rule of the grid above it."""
    out = [Candidate(c) for c in confs]
    grid = itertools.product(confs, min_parts, max_part_shares, whole_car_confs, drop_off_part)
    for conf, parts, share, wconf, drop in grid:
        if wconf > conf or drop:  # a rule that changes nothing is the threshold alone
            out.append(Candidate(conf, WholeCarRule(parts, share, max(wconf, conf), drop)))
    return out


def sweep(records: Sequence[PhotoRecord], grid: Sequence[Candidate]) -> list[dict[str, Any]]:
    rows = []
    for candidate in grid:
        figures = score(records, candidate.rule)
        rows.append(
            {
                **candidate.as_dict(),
                **{k: v for k, v in figures.items() if k != "per_source"},
                "severe_damage_recall_iou30": {
                    s: figures["per_source"][s].get("severe_damage_recall_iou30")
                    for s in ("damaged-parts", "damage-severity")
                },
                "damage_precision_iou30": {
                    s: figures["per_source"][s]["damage_precision_iou30"] for s in OUTLINED
                },
            }
        )
    return rows


MAX_INTACT = 0.05
"""Issue 29's goal for `intact_photos_with_damage`, the bound a chosen rule must meet on val."""


def mean_recall(row: dict[str, Any]) -> float:
    values = [v for v in row["damage_recall_iou30"].values() if v is not None]
    return sum(values) / len(values) if values else 0.0


def simplicity(row: dict[str, Any]) -> tuple[float, ...]:
    """Among equals, the rule that changes least: no rule, then one that touches fewer photos
    (more parts, any part size), a lower whole-car score, and keeping damage off parts."""
    rule = row["whole_car"]
    if rule is None:
        return (0.0,)
    return (
        1.0,
        float(rule["drop_off_part"]),
        -rule["min_parts"],
        -rule["max_part_share"],
        rule["whole_car_conf"],
    )


def choose(rows: Sequence[dict[str, Any]], served_conf: float) -> dict[str, Any] | None:
    """The criterion, written down before test was looked at: of the candidates served at
    the model's own threshold, with val `intact_photos_with_damage` <= 0.05 and no more
    close-ups refused than the threshold alone, the one with the highest mean
    `damage_recall_iou30` over the three damage sources; then the higher severe recall on
    `damaged-parts`; then the simpler rule. A global threshold competes on the same terms, so
    a rule is chosen only where it keeps more damage than a higher threshold would."""
    base = next(r for r in rows if r["conf"] == served_conf and r["whole_car"] is None)
    fit = [
        r
        for r in rows
        if (r["conf"] == served_conf or r["whole_car"] is None)
        and r["intact_photos_with_damage"] is not None
        and r["intact_photos_with_damage"] <= MAX_INTACT
        and (r["closeups_refused"] or 0.0) <= (base["closeups_refused"] or 0.0)
    ]
    if not fit:
        return None

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        severe = row["severe_damage_recall_iou30"].get("damaged-parts") or 0.0
        return (round(mean_recall(row), 6), round(severe, 6), tuple(-x for x in simplicity(row)))

    return max(fit, key=key)


MAX_PRECISION_LOSS = 0.05
"""How much of the served threshold's mean precision on damage photos (the share of reported
damage that overlaps a labelled region, over the outlined sources) a threshold chosen with
its rule may give up. A finding under confidence 0.6 goes to an adjuster in any case, so a
false one costs a reviewer a line to strike, while missed heavy damage is under-priced
(issue 29's first complaint); the bound keeps that trade from running away."""


def mean_precision(row: dict[str, Any]) -> float:
    values = [v for v in row["damage_precision_iou30"].values() if v is not None]
    return sum(values) / len(values) if values else 0.0


def choose_served(rows: Sequence[dict[str, Any]], served_conf: float) -> dict[str, Any] | None:
    """The criterion for choosing a threshold and a whole-car rule together (a new damage
    model, or the served threshold revisited), written before the sweeps it was first used
    on were run (2026-12-02): of every candidate, those with val
    `intact_photos_with_damage` <= 0.05, no more close-ups refused than `served_conf` alone,
    and a mean precision on damage photos at most `MAX_PRECISION_LOSS` below it; of these
    the highest mean `damage_recall_iou30` over the three damage sources; then the higher
    severe recall on `damaged-parts`; then the higher threshold; then the simpler rule."""
    base = next(r for r in rows if r["conf"] == served_conf and r["whole_car"] is None)
    return best_within(rows, base, MAX_INTACT)


def best_within(
    rows: Sequence[dict[str, Any]], base: dict[str, Any], max_intact: float
) -> dict[str, Any] | None:
    """`choose_served`'s choice, its intact bound `max_intact`, `base` the threshold alone."""
    fit = [
        r
        for r in rows
        if r["intact_photos_with_damage"] is not None
        and r["intact_photos_with_damage"] <= max_intact
        and (r["closeups_refused"] or 0.0) <= (base["closeups_refused"] or 0.0)
        and mean_precision(r) >= mean_precision(base) - MAX_PRECISION_LOSS
    ]
    if not fit:
        return None

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        severe = row["severe_damage_recall_iou30"].get("damaged-parts") or 0.0
        return (
            round(mean_recall(row), 6),
            round(severe, 6),
            row["conf"],
            tuple(-x for x in simplicity(row)),
        )

    return max(fit, key=key)


STRICT_INTACT = 0.02
"""Half of `MAX_INTACT`: on cars no rule was chosen on (test), the served rules' intact
figure has run at about twice val's (0.04 on val, 0.09 and 0.10 on test)."""


def choose_strict_intact(
    rows: Sequence[dict[str, Any]], served_conf: float, served: dict[str, Any]
) -> dict[str, Any] | None:
    """The criterion for a verifier bar on whole-car views, written before its first sweep
    was run (2026-12-03, sixth session): `choose_served`'s, with val
    `intact_photos_with_damage` at most `STRICT_INTACT` and `intact_closeups_with_damage` no
    higher than `served`'s (the served rule's row)."""
    base = next(r for r in rows if r["conf"] == served_conf and r["whole_car"] is None)
    ceiling = served.get("intact_closeups_with_damage")
    fit = [
        r
        for r in rows
        if ceiling is None or (r.get("intact_closeups_with_damage") or 0.0) <= ceiling
    ]
    return best_within(fit, base, STRICT_INTACT)


def pass_sweep_parser(doc: str | None, add_help: bool) -> argparse.ArgumentParser:
    """The options every sweep over a cached pass shares (`training.claim_rules --pass`)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n")[0], add_help=add_help)
    parser.add_argument("--split", default="val", choices=["val", "test"],
                        help="the split of the cached pass (choose on val)")  # fmt: skip
    parser.add_argument("--cache", type=Path, required=True, help="claim_rules --pass output")
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument("--out", type=Path, default=None, help="write the sweep as JSON here")
    return parser
