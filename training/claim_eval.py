"""Damage measured as a claim is: found, on the right part, and none where there is none.

The served analyzer (gate, damage model with its severity stage, part model, the damage ->
part rule) runs on the held-out photos of each source, and each source answers its own
question at the served thresholds:

* `car-parts-damage`, `damaged-parts` (close-ups whose outlines name the damaged part):
  `damage_recall_iou30`, the share of outlined regions some reported damage overlaps at
  mask IoU >= 0.3, any type; `part_family_accuracy`, of the regions found, the share whose
  best-overlapping damage was put on a part of the family the label names (`part_families`
  in the config; a fender's damage is right on no part too: `cdat.part_family.family_right`);
  `found_on_no_part`, of the regions found, the share whose damage lies on no part
  (unpriced until an adjuster places it);
  `closeups_refused`, the share of these photos of damaged cars refused as `no_vehicle`;
* `damage-severity`: `damage_recall_iou30`, and the same for the damages labelled severe;
* where a source grades damage (`damage-severity`, `damaged-parts`' `major_` photos):
  `severe_called_severe`, of the severe regions found, the share priced as severe: the
  severity of the finding that holds the region's best-overlapping damage, each photo a
  claim of its own (`severe_called`: how many at each severity);
* each of these three: `damages_per_photo`, how many damages an adjuster reads a photo (one
  damage reported several times, as several types and boxes, counts each time);
* `car-parts` (whole cars, all intact: its card): `intact_photos_with_damage`, the share of
  photos with any reported damage; and `intact_closeups_with_damage`, the same of close-up
  windows of those photos (`training/intact_closeups.py`: no set holds close-ups of intact
  cars, and a close-up meets a lower threshold than a whole car);
* `no-vehicle` (`training/no_vehicle.py`; its `test` split holds every photo whose licence
  forbids training): `non_vehicle_refused`, the share refused as `no_vehicle` with no damage;
* where asked (`python -m training.claims` asks), each source's `triage`: its photos, each a
  claim of its own, triaged as the service would (`training/triage_tally.py`): the share going
  straight through, of those found damaged too, and how often each reason is given; and at
  the top `intact_straight_through`, the share of intact cars paid without an adjuster.

Choose on `--split val`; `--split test` once, for the card::

    python -m training.claims --split val --out runs/eval/claims-val.json
    python -m training.claims --damage runs/damage-new.onnx \\
        --severity runs/severity/severity.json --damage-conf 0.2 --split val
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cdat.findings import PhotoAnalysis
from cdat.taxonomy import PartFamily, Severity
from training.closeup import _polygon_mask, held_out_photos, part_families
from training.closeup import photo_grade as graded
from training.convert import split_records
from training.dataconfig import (
    REPO_ROOT,
    check_data_present,
    default_data_root,
    load_dataset_config,
)
from training.intact_closeups import WINDOWS_PER_PHOTO, intact_closeups
from training.no_vehicle import no_vehicle_split, read_no_vehicle
from training.outline_tally import (
    SEVERE,
    Outline,
    OutlineTally,
    _share,
)
from training.triage_tally import TriageTally, shipped_policy

DATASETS = REPO_ROOT / "datasets"
PART_NAMED = ("car-parts-damage", "damaged-parts")
INTACT_CLOSEUPS = "car-parts close-ups"
INTACT_FIGURES = ("intact_photos_with_damage", "intact_closeups_with_damage")


def refused_unpriced(analysis: PhotoAnalysis) -> bool:
    """What `non_vehicle_refused` counts: refused as showing no vehicle, and no finding left
    that an estimate would price."""
    return analysis.refused_no_vehicle and not analysis.damages


def outlines_of(
    instances: Iterable[tuple[str, list[float]]],
    shape: tuple[int, int],
    families: dict[str, PartFamily] | None,
    photo_grade: str | None = None,
) -> list[Outline]:
    """A typed label names its severity (`severe-dent`); a part-named one takes the photo's
    grade where the source grades photos (`damaged-parts`' `major_` file names)."""
    out = []
    for name, polygon in instances:
        mask = _polygon_mask(polygon, shape, scale=True)
        if not mask.any():
            continue
        family = None if families is None else families[name]
        severity = name.split("-", 1)[0] if families is None and "-" in name else photo_grade
        out.append(Outline(mask, family, severity))
    return out


def photo_grade(image: Path) -> str | None:
    """`damaged-parts` names a photo by its grade; `major_` damage is the severe kind."""
    return SEVERE if graded(image) is Severity.SEVERE else None


def typed_photos(
    config: Path, split: str, seed: int, data_root: Path
) -> Iterator[tuple[Path, list]]:
    """Photos of a typed data set (COCO classes mapped: `severe-dent`, ...) in one split."""
    for rec in split_records(load_dataset_config(config, data_root), split, seed):
        yield rec.image, rec.instances


def analyse(analyzer: Any, image: Path) -> PhotoAnalysis:
    from cdat.analysis import PhotoInput

    analysis: PhotoAnalysis = analyzer.analyze([PhotoInput(image.name, image.read_bytes())])[0]
    return analysis


def outlined_report(
    analyzer: Any,
    source: str,
    split: str,
    seed: int,
    data_root: Path,
    triage: TriageTally | None = None,
) -> dict[str, Any]:
    config = DATASETS / f"{source}.yaml"
    tally = OutlineTally()
    if source in PART_NAMED:
        families: dict[str, PartFamily] | None = part_families(config)
        photos: Iterable[tuple[Path, list]] = held_out_photos(config, split, seed, data_root)
    else:
        families, photos = None, typed_photos(config, split, seed, data_root)
    for image, instances in photos:
        analysis = analyse(analyzer, image)
        shape = (analysis.height, analysis.width)
        grade = photo_grade(image) if source == "damaged-parts" else None
        tally.add_photo(analysis, outlines_of(instances, shape, families, grade))
        if triage is not None:
            triage.add(analysis)
    report = tally.report()
    if source in PART_NAMED:
        report["closeups_refused"] = report["refused_no_vehicle"]
    return with_triage(report, triage)


def with_triage(report: dict[str, Any], triage: TriageTally | None) -> dict[str, Any]:
    """A source's figures, with how its photos are triaged where that was asked."""
    return report if triage is None else {**report, "triage": triage.report()}


def intact_report(
    analyzer: Any, split: str, seed: int, data_root: Path, triage: TriageTally | None = None
) -> dict[str, Any]:
    cars = typed_photos(DATASETS / "car-parts.yaml", split, seed, data_root)
    photos = [image for image, _ in cars]
    with_damage = [image.name for image in photos if _found(analyse(analyzer, image), triage)]
    report = {
        "photos": len(photos),
        "intact_photos_with_damage": _share(len(with_damage), len(photos)),
        "damaged_photo_names": sorted(with_damage),
    }
    return with_triage(report, triage)


def _found(analysis: PhotoAnalysis, triage: TriageTally | None) -> bool:
    """Whether an intact photo was found damaged, triaged too where that was asked."""
    if triage is not None:
        triage.add(analysis)
    return bool(analysis.damages)


def intact_closeup_report(
    analyzer: Any,
    split: str,
    seed: int,
    data_root: Path,
    windows_per_photo: int,
    triage: TriageTally | None = None,
) -> dict[str, Any]:
    from cdat.analysis import PhotoInput

    cars = typed_photos(DATASETS / "car-parts.yaml", split, seed, data_root)
    closeups = intact_closeups(cars, windows_per_photo)
    with_damage = [
        c.name
        for c in closeups
        if _found(analyzer.analyze([PhotoInput(c.name, c.jpeg)])[0], triage)
    ]
    report = {
        "photos": len(closeups),
        "windows_per_photo": windows_per_photo,
        "intact_closeups_with_damage": _share(len(with_damage), len(closeups)),
        "damaged_photo_names": sorted(with_damage),
    }
    return with_triage(report, triage)


def no_vehicle_report(analyzer: Any, split: str, data_root: Path) -> dict[str, Any]:
    photos = no_vehicle_split(data_root, split)
    kept = []
    for photo in photos:
        analysis = analyse(analyzer, photo.path)
        if not refused_unpriced(analysis):
            kept.append(photo.path.name)
    return {
        "photos": len(photos),
        "non_vehicle_refused": _share(len(photos) - len(kept), len(photos)),
        "not_refused": sorted(kept),
    }


OUTLINED = ("car-parts-damage", "damaged-parts", "damage-severity")


def check_sources(data_root: Path | None = None) -> Path:
    """The data root, once every source is known to be there: a missing set is one error
    before the pass over the photos, which takes minutes, not after it."""
    root = data_root or default_data_root()
    for source in (*OUTLINED, "car-parts"):
        check_data_present(load_dataset_config(DATASETS / f"{source}.yaml", root))
    read_no_vehicle(root)
    return root


def claim_report(
    analyzer: Any,
    split: str,
    seed: int = 0,
    data_root: Path | None = None,
    intact_windows: int = WINDOWS_PER_PHOTO,
    triage: bool = False,
) -> dict[str, Any]:
    """Every source's figures, and the headline ones at the top level. `intact_windows`
    close-up windows are cut from each intact car (more: a finer figure from the same cars).
    With `triage`, each source also says how its photos are triaged, each a claim of its own
    (`training/triage_tally.py`; it costs a merge and an estimate a photo, so the sweeps that
    compare rules leave it out)."""
    root = check_sources(data_root)

    policy = shipped_policy() if triage else None  # read once, one tally a source

    def tally() -> TriageTally | None:
        return None if policy is None else TriageTally(policy)

    per_source: dict[str, Any] = {
        source: outlined_report(analyzer, source, split, seed, root, tally()) for source in OUTLINED
    }
    per_source["car-parts"] = intact_report(analyzer, split, seed, root, tally())
    per_source[INTACT_CLOSEUPS] = intact_closeup_report(
        analyzer, split, seed, root, intact_windows, tally()
    )
    per_source["no-vehicle"] = no_vehicle_report(analyzer, split, root)
    # The figures hold for the backend and precision they ran in: a candidate runs in FP32,
    # while serving may run the promoted damage model in bf16 (its precision gate).
    runtimes = dict(getattr(analyzer, "runtimes", {}) or {})
    return {"split": split, "runtimes": runtimes, **headline(per_source), "per_source": per_source}


def headline(per_source: dict[str, Any]) -> dict[str, Any]:
    closeups = [per_source[s] for s in PART_NAMED]
    photos = sum(r["photos"] for r in closeups)
    refusals = sum(round((r["closeups_refused"] or 0) * r["photos"]) for r in closeups)
    triaged = per_source["car-parts"].get("triage")
    paid_for_nothing = {} if triaged is None else {
        "intact_straight_through": triaged["straight_through"]
    }  # fmt: skip
    return {
        "damage_recall_iou30": {
            s: per_source[s]["damage_recall_iou30"] for s in (*PART_NAMED, "damage-severity")
        },
        "part_family_accuracy": {s: per_source[s].get("part_family_accuracy") for s in PART_NAMED},
        "intact_photos_with_damage": per_source["car-parts"]["intact_photos_with_damage"],
        "intact_closeups_with_damage": per_source.get(INTACT_CLOSEUPS, {}).get(
            "intact_closeups_with_damage"
        ),
        "non_vehicle_refused": per_source["no-vehicle"]["non_vehicle_refused"],
        "closeups_refused": _share(refusals, photos),
        **paid_for_nothing,
    }


def claims_markdown(claims: dict[str, Any]) -> list[str]:
    """The claim-level figures as a table, one row per source."""

    def fmt(value: Any) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    def within(interval: Any) -> str:
        return "" if interval is None else f" ({interval[0]:.2f}-{interval[1]:.2f})"

    ran = ", ".join(f"{task} in {runtime}" for task, runtime in claims.get("runtimes", {}).items())
    lines = [
        "",
        f"Measured as a claim is (`{claims['split']}`{'; ' + ran if ran else ''}; "
        f"closeups_refused {fmt(claims['closeups_refused'])}; in brackets, a 90% interval "
        "over source photos, training/intervals.py):",
        "",
        "| source | photos | recall IoU 0.3 | severe (called severe) | part family "
        "| found on no part | with damage | refused | damages a photo |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for source, r in claims["per_source"].items():
        with_damage = next((r[k] for k in (*INTACT_FIGURES, "photos_with_damage") if k in r), None)
        refusals = r.get("non_vehicle_refused", r.get("refused_no_vehicle"))
        recall, severe = r.get("damage_recall_iou30"), r.get("severe_damage_recall_iou30")
        family = r.get("part_family_accuracy")
        recall_cell = fmt(recall) + within(r.get("damage_recall_iou30_interval"))
        family_cell = fmt(family) + within(r.get("part_family_accuracy_interval"))
        called = r.get("severe_called_severe")
        severe_cell = fmt(severe) + ("" if called is None else f" ({called:.2f})")
        lines.append(
            f"| {source} | {r['photos']} | {recall_cell} | {severe_cell} "
            f"| {family_cell} | {fmt(r.get('found_on_no_part'))} | {fmt(with_damage)} "
            f"| {fmt(refusals)} "
            f"| {fmt(r.get('damages_per_photo'))} |"
        )
    return lines + triage_markdown(claims["per_source"])


def triage_markdown(per_source: dict[str, Any]) -> list[str]:
    """How each source's photos are triaged, each a claim of its own ([] where not asked)."""
    triaged = {source: r["triage"] for source, r in per_source.items() if "triage" in r}
    if not triaged:
        return []
    lines = [
        "",
        "Each photo a claim of its own, triaged as the service would (training/triage_tally.py):",
        "",
        "| source | photos | straight through | found damaged | of those, straight through "
        "| reasons given most (share of photos) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for source, t in triaged.items():
        most = sorted(t["reasons"].items(), key=lambda kv: -kv[1])[:3]
        reasons = ", ".join(f"{code} {share:.2f}" for code, share in most) or "none"
        through, damaged = t["straight_through"], t["damaged_straight_through"]
        lines.append(
            f"| {source} | {t['photos']} | {'n/a' if through is None else f'{through:.3f}'} "
            f"| {t['found_damaged']} | {'n/a' if damaged is None else f'{damaged:.3f}'} "
            f"| {reasons} |"
        )
    return lines
