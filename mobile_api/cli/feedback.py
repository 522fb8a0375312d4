"""Adjuster corrections as training data: `cdat feedback export OUT_DIR`.

A photo becomes a label when an adjuster corrected (confirmed, edited, added or deleted
a finding on) that photo: its damages in the claim's latest adjuster-made assessment
version are the labels, the ones the adjuster left untouched included (they looked at
the photo and kept them), but for a model damage that repeats a surer one
(`cdat.merge.seen_again`: outlined again at another extent, or named again as another
type), which the workspace folds away and a label would teach as a second damage. A reviewed
photo with no damage left is a background image.

The export is a YOLO segmentation data set in the damage model's classes
("{severity}-{type}", `cdat.taxonomy.DAMAGE_CLASSES` order), and the same outlines named by
the part family of the part each damage is on (the part-family stage's labels: where an
adjuster moved a damage to another part, that is the stage's lesson; a damage on no part
names no family):

    OUT_DIR/images/{train,val}/<claim>_<photo>.jpg
    OUT_DIR/labels/{train,val}/<claim>_<photo>.txt   # class x1 y1 x2 y2 ... (0..1)
    OUT_DIR/family-labels/{train,val}/<claim>_<photo>.txt   # family x1 y1 ... (0..1)
    OUT_DIR/data.yaml                                # Ultralytics data file
    OUT_DIR/dataset.yaml                             # CDAT dataset config (training/)
    OUT_DIR/families.yaml                            # the same, by part family
    OUT_DIR/README.md                                # card: source, date, counts, licence

Photos of one claim stay in one split. Train on it next to the public data sets with
`datasets/damage-with-feedback.yaml` (export into $CDAT_DATA_ROOT/cdat-feedback), or list
OUT_DIR/dataset.yaml in any training config; the part-family stage learns the families with
`python -m training.part_family --with-data datasets/cdat-feedback-families.yaml` (or
OUT_DIR/families.yaml).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import select

from cdat.errors import CdatError
from cdat.findings import DamageInstance
from cdat.merge import seen_again
from cdat.record import decode
from cdat.settings import Settings
from cdat.taxonomy import DAMAGE_CLASSES, PartFamily, damage_class_name
from mobile_api.runtime import Runtime
from mobile_api.storage import models

CLASS_NAMES = [damage_class_name(d, s) for d, s in DAMAGE_CLASSES]
FAMILY_NAMES = [f.value for f in PartFamily if f is not PartFamily.UNLISTED_PANEL]
"""Family label ids: every family a part is of (a damage on no part names none)."""
LICENCE = "Insurer's own: claim photos and adjuster labels; internal use, not for redistribution"
DATASET_NAME = "cdat-feedback"
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


LABEL_TREES = ("images", "labels", "family-labels")


class FeedbackError(CdatError):
    code = "feedback_export_failed"


@dataclass(frozen=True)
class Label:
    claim_id: str
    photo_id: str
    sha256: str
    content_type: str
    width: int
    height: int
    damages: tuple[DamageInstance, ...]


@dataclass
class ExportSummary:
    out_dir: Path
    images: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    instances: Counter[str] = field(default_factory=Counter)
    families: Counter[str] = field(default_factory=Counter)
    claims: set[str] = field(default_factory=set)

    @property
    def total_images(self) -> int:
        return sum(self.images.values())


def reviewed_labels(rt: Runtime) -> Iterator[Label]:
    """Reviewed photos of each claim's latest adjuster version, oldest claim first."""
    with rt.sessions() as session:
        records = session.scalars(
            select(models.AssessmentRecord)
            .where(models.AssessmentRecord.source == "adjuster")
            .order_by(models.AssessmentRecord.claim_id, models.AssessmentRecord.version.desc())
        ).all()
        latest: dict[str, models.AssessmentRecord] = {}
        for record in records:
            latest.setdefault(record.claim_id, record)
        for claim_id, record in sorted(latest.items()):
            for photo in decode(record.body).photos:
                if not photo.reviewed:
                    continue
                row = session.get(models.Photo, photo.photo_id)
                if row is None:
                    continue
                yield Label(
                    claim_id,
                    row.id,
                    row.sha256,
                    row.content_type,
                    photo.width,
                    photo.height,
                    labelled(photo.damages),
                )


def labelled(damages: tuple[DamageInstance, ...]) -> tuple[DamageInstance, ...]:
    """A reviewed photo's damages that are labels: all but the model's repeats."""
    again = seen_again(damages)
    return tuple(d for k, d in enumerate(damages) if k not in again)


def label_lines(label: Label) -> list[str]:
    """YOLO segmentation lines: class id, then the outline normalised to 0..1."""
    return [
        _line(CLASS_NAMES.index(damage_class_name(d.damage_type, d.severity)), d, label)
        for d in label.damages
    ]


def family_lines(label: Label) -> list[str]:
    """The same outlines, each named by the family of the part its damage is on."""
    return [
        _line(FAMILY_NAMES.index(d.part.family.value), d, label)
        for d in label.damages
        if d.part is not None
    ]


def _line(class_id: int, damage: DamageInstance, label: Label) -> str:
    points = list(damage.polygon)
    if len(points) < 3:
        b = damage.box
        points = [(b.x1, b.y1), (b.x2, b.y1), (b.x2, b.y2), (b.x1, b.y2)]
    coords = []
    for x, y in points:
        coords += [min(max(x / label.width, 0.0), 1.0), min(max(y / label.height, 0.0), 1.0)]
    return " ".join([str(class_id), *(f"{v:.6f}" for v in coords)])


def split_of(claim_id: str, val_percent: int) -> str:
    """Stable per claim, so re-exports keep every photo in the split it was in."""
    bucket = int(hashlib.sha256(claim_id.encode()).hexdigest(), 16) % 100
    return "val" if bucket < val_percent else "train"


def prepare(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FeedbackError(f"{out_dir} is not empty: choose a new folder or pass --overwrite")
        if not (out_dir / "dataset.yaml").is_file():
            raise FeedbackError(f"{out_dir} holds something other than a feedback export")
        for sub in LABEL_TREES:
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    for kind in LABEL_TREES:
        for split in ("train", "val"):
            (out_dir / kind / split).mkdir(parents=True, exist_ok=True)


def export(rt: Runtime, out_dir: Path, *, val_percent: int = 10, overwrite: bool = False):
    """Write the data set; FeedbackError when nothing has been reviewed yet."""
    labels = list(reviewed_labels(rt))
    if not labels:
        raise FeedbackError(
            "no reviewed photos yet: corrections made in the adjuster workspace become labels"
        )
    out_dir = out_dir.resolve()
    prepare(out_dir, overwrite)
    summary = ExportSummary(out_dir)
    for label in labels:
        split = split_of(label.claim_id, val_percent)
        stem = f"{label.claim_id}_{label.photo_id}"
        ext = EXTENSIONS.get(label.content_type, ".jpg")
        (out_dir / "images" / split / (stem + ext)).write_bytes(rt.blobs.get(label.sha256))
        lines = label_lines(label)
        (out_dir / "labels" / split / (stem + ".txt")).write_text("".join(f"{x}\n" for x in lines))
        named = family_lines(label)
        family_file = out_dir / "family-labels" / split / (stem + ".txt")
        family_file.write_text("".join(f"{x}\n" for x in named))
        summary.families.update(FAMILY_NAMES[int(line.split()[0])] for line in named)
        summary.images[split] += 1
        summary.claims.add(label.claim_id)
        summary.instances.update(CLASS_NAMES[int(line.split()[0])] for line in lines)
    write_metadata(summary, rt.settings)
    return summary


def write_metadata(summary: ExportSummary, settings: Settings) -> None:
    out = summary.out_dir
    data = {
        "path": str(out),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(CLASS_NAMES)),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    config = {
        "name": DATASET_NAME,
        "task": "damage",
        "format": "yolo",
        "root": str(out),
        "licence": LICENCE,
        "attribution": "Claim photos and adjuster corrections from this CDAT installation",
        "card": "README.md",
        "names": CLASS_NAMES,
        "splits": {s: {"images": f"images/{s}", "labels": f"labels/{s}"} for s in ("train", "val")},
        "resplit": "source",
        "classes": {name: name for name in CLASS_NAMES},
    }
    (out / "dataset.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "families.yaml").write_text(yaml.safe_dump(families_config(out), sort_keys=False))
    (out / "README.md").write_text(card(summary))


def families_config(out: Path) -> dict[str, object]:
    """The family labels as a part-named data set (as `car-parts-damage` is): no damage
    type, so the detector never learns from it; `part_families` names each class."""
    return {
        "name": f"{DATASET_NAME}-families",
        "task": "damage",
        "format": "yolo",
        "root": str(out),
        "licence": LICENCE,
        "attribution": "Claim photos and adjusters' part corrections from this CDAT installation",
        "card": "README.md",
        "names": FAMILY_NAMES,
        "splits": {
            s: {"images": f"images/{s}", "labels": f"family-labels/{s}"} for s in ("train", "val")
        },
        "resplit": "source",
        "classes": {name: None for name in FAMILY_NAMES},
        "part_families": {name: name for name in FAMILY_NAMES},
    }


def card(summary: ExportSummary) -> str:
    rows = "\n".join(f"| `{n}` | {summary.instances.get(n, 0)} |" for n in CLASS_NAMES)
    family_rows = "\n".join(f"| `{n}` | {summary.families.get(n, 0)} |" for n in FAMILY_NAMES)
    return f"""# {DATASET_NAME}: adjuster-reviewed damage labels

- **Source**: claim photos reviewed in this CDAT installation's adjuster workspace. A photo
  is included when an adjuster confirmed, edited, added or deleted a finding on it; its
  labels are the damages of the claim's latest adjuster-made assessment version, but for
  the model's repeats of a surer damage (outlined or named again).
- **Exported**: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
- **Count**: {summary.total_images} images ({summary.images["train"]} train,
  {summary.images["val"]} val) from {len(summary.claims)} claims,
  {sum(summary.instances.values())} damage instances.
- **Licence**: {LICENCE}. The photos are policyholders' personal data: keep this folder
  inside the insurer's systems and out of any repository.
- **Format**: YOLO segmentation, classes `{{severity}}-{{type}}` in `cdat.taxonomy` order
  (`data.yaml` for Ultralytics, `dataset.yaml` for CDAT training configs). Photos of one
  claim stay in one split.

| class | instances |
| --- | --- |
{rows}

The same outlines by the part family of the part each damage is on (`family-labels/`,
`families.yaml`: the part-family stage's labels; a damage on no part names none):

| family | instances |
| --- | --- |
{family_rows}
"""


def add_commands(sub: argparse._SubParsersAction) -> None:
    feedback = sub.add_parser("feedback", help="turn adjuster corrections into training data")
    actions = feedback.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    export_cmd = actions.add_parser(
        "export", help="write reviewed photos as a YOLO segmentation data set"
    )
    export_cmd.add_argument(
        "out_dir", type=Path, metavar="OUT_DIR", help="folder for the data set (new or empty)"
    )
    export_cmd.add_argument(
        "--val-percent", type=int, default=10, help="share of claims put in val (default 10)"
    )
    export_cmd.add_argument(
        "--overwrite", action="store_true", help="replace an earlier export in OUT_DIR"
    )
    export_cmd.set_defaults(handler=_export_command)


def _export_command(args: argparse.Namespace) -> int:
    if not 0 <= args.val_percent <= 50:
        raise FeedbackError("--val-percent must be between 0 and 50")
    rt = Runtime.build(Settings())
    try:
        summary = export(rt, args.out_dir, val_percent=args.val_percent, overwrite=args.overwrite)
    finally:
        rt.dispose()
    print(
        f"exported {summary.total_images} images ({summary.images['train']} train, "
        f"{summary.images['val']} val) from {len(summary.claims)} claims, "
        f"{sum(summary.instances.values())} instances, to {summary.out_dir}"
    )
    return 0
