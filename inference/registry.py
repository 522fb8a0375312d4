"""The model registry: a JSON file beside the model files, readable without PyTorch.

Layout of `<model_dir>/registry.json`::

    {"promoted": {"damage": "<entry id>", "parts": "<entry id>", "gate": "<entry id>"},
     "entries": [{...ModelEntry fields...}, ...]}

Serving reads it; `training` writes it (register, promote). Entries are never
deleted, and edited only to record the precisions a model passed the precision gate in
(`python -m training.precision_gate`): a new model, or a model served at a new threshold or
whole-car rule, is a new entry, and promotion moves a pointer. (Once, on 2026-12-02,
`damage-claims-seg-n-20261201-1` was given the whole-car rule it was already served with,
when the rule moved from a constant into the entry.) The binaries of superseded entries
leave the tree (git history keeps them, and the entry keeps their SHA-256) so that the tree
stays small enough to travel to a lent GPU; the entries and cards stay. `promote` refuses
a candidate that is worse than the promoted model on the task's gate metrics
(`inference.promotion_gate.GATE_METRICS`) unless forced.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from cdat.calibration import ConfidenceCalibration
from cdat.part_family import FamilyRule
from cdat.placement import PlacementRule
from cdat.verified import VerifierRule
from cdat.whole_car import WholeCarRule
from inference.errors import ModelUnavailable, RegistryError
from inference.promotion_gate import compare_gate
from inference.stage_record import ModelFile, StageRecord

Task = Literal["damage", "parts", "gate"]
TASKS: tuple[Task, ...] = ("damage", "parts", "gate")
"""`gate` is the vehicle gate (inference/vehicle_gate.py): optional, served when promoted."""
REGISTRY_FILE = "registry.json"
EXTRA_METRICS = (
    "type_box_map50",
    "type_mask_map50",
    "damage_recall_iou30",
    "severity_accuracy",
    "severity_balanced_accuracy",
    "severity_matched",
    "closeup_part_accuracy",
    "served_conf",
    "served_precision",
    "served_recall",
    "non_vehicle_refused",
    "closeups_refused",
    "vehicle_photos_refused",
)
"""Registry metric names beside mAP, where measured (the gate and the model cards use them)."""
DEFAULT_SERVED_CONF: dict[Task, float] = {"damage": 0.15, "parts": 0.25, "gate": 0.5}
"""The served thresholds of models registered before entries recorded their own `served_conf`;
each was chosen on its model's val split."""


ENTRY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
"""An entry id: it names files the tools write (`training.precision_gate`'s reports) and is
typed on command lines, so lower-case letters, digits, '.', '_' and '-', at most 80."""


def check_entry_id(entry_id: str) -> str:
    """`entry_id`, if an entry may be called so; else a RegistryError saying what is allowed."""
    if ENTRY_ID.fullmatch(entry_id) is None or ".." in entry_id:
        raise RegistryError(
            f"model id {entry_id!r}: use lower-case letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit, no '..', at most 80 characters)"
        )
    return entry_id


class PromotionRefused(RegistryError):
    code = "promotion_refused"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    """Unique, e.g. 'damage-seg-n-20261125-1'."""
    task: Task
    file: str
    """Model file path relative to the model directory."""
    sha256: str
    classes: list[str]
    imgsz: int
    architecture: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)
    licence: str = ""
    command: str = ""
    created_at: str = ""
    card: str = ""
    """Model card path relative to the model directory."""
    severity_model: str = ""
    """Damage models whose classes are types: the severity stage's JSON, relative to the
    model directory (inference/severity.py)."""
    closeup_severity_model: str = ""
    """Damage models: the severity stage that re-reads every damage on a photo which is no
    whole-car view (JSON, relative to the model directory). Absent: one stage everywhere."""
    closeup_severity_view_below: float | None = None
    """With `closeup_severity_model`: only photos whose whole-car view the gate reads under
    this probability are re-read (those it is sure show no whole car). Absent: every photo
    that is no whole-car view by the whole-car rule."""
    init: dict[str, str] = field(default_factory=dict)
    """The weights training started from: path, sha256, origin, licence."""
    precisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The precision gate's verdicts beside fp32 (`training.precision_gate`), e.g.
    {"bf16": {"passed": true, "runtime": "openvino", "accuracy": {...}, "parity": {...}}};
    an int8 record names its quantised `file` and `sha256`. Absent (older entries): fp32
    only."""
    whole_car_rule: dict[str, Any] = field(default_factory=dict)
    """Damage models: the whole-car rule chosen on val for this model's scores
    (cdat/whole_car.py, `WholeCarRule.to_record`), served with it. Absent: no rule."""
    crop_look: bool = False
    """Damage models: served with a closer second look at each photo's middle
    (inference/crop_look.py), as it was chosen and measured. Absent: one look."""
    zoom_look_view_below: float | None = None
    """Damage models: on photos whose whole-car view the vehicle gate reads under this
    probability, served with a second look from further away (inference/zoom_look.py), as
    it was chosen and measured. Absent: one look on every photo."""
    zoom_look_where_found: bool = False
    """Damage models with `zoom_look_view_below`: the look is taken only on photos the first
    look, as served, finds damage on, and the photo analysed again with both looks' damages:
    the look measures the damage, it never makes a photo damaged. Absent: on every photo
    under the bar."""
    middle_look_where_found: bool = False
    """Damage models: the closer look at each photo's middle (inference/crop_look.py), taken
    on every photo the first look, as served, finds damage on and pooled with the
    zoomed-out look where that is taken too, the photo then analysed again. Absent: not
    taken."""
    detector_where_found: dict[str, Any] = field(default_factory=dict)
    """Damage models: a second damage detector of the same classes (`ModelFile.to_record`:
    file, sha256), run on the whole photo as one more look on every photo the first look,
    as served, finds damage on, its detections that overlap none of the other looks' joined
    to theirs before the verifiers (inference/detector_look.py). Absent: not taken."""
    corner_looks_where_found: bool = False
    """Damage models: the closer looks at each photo's four corners (inference/crop_look.py,
    `CornerLooks`), taken where `middle_look_where_found`'s look is; of their detections,
    those a first-look detection overlaps are joined where no other look's lie
    (`SegmentationModel.looked_again`). Absent: not taken."""
    verifier: dict[str, Any] = field(default_factory=dict)
    """Damage models: the damage verifier served beside it (inference/damage_verifier.py,
    `StageRecord.to_record`: file, sha256, `cdat.verified.VerifierRule`), as it was
    measured; the model then runs at its `served_conf`, below the rule's `base_conf`.
    Absent: no verifier."""
    closeup_verifier: dict[str, Any] = field(default_factory=dict)
    """Damage models served with a verifier: the verifier that reads photos which are no
    whole-car view instead (`StageRecord.to_record`, its rule's `base_conf` the verifier's),
    as it was measured. Absent: the verifier reads every photo."""
    placer: dict[str, Any] = field(default_factory=dict)
    """Damage models: the damage placer served beside it (inference/placer.py, a head on the
    model's own backbone; `StageRecord.to_record`: file, sha256, `cdat.placement.
    PlacementRule`), as it was measured. Absent: damage placed by its own masks."""
    family_stage: dict[str, Any] = field(default_factory=dict)
    """Part models: the part-family stage served beside it (inference/part_family.py,
    `StageRecord.to_record`: file, sha256, rule), as it was measured. Absent: masks alone."""
    confidence_calibration: dict[str, Any] = field(default_factory=dict)
    """Damage models: the curves that read a damage's score as the chance it is damage
    (cdat/calibration.py, `ConfidenceCalibration.to_record`; fitted on val by `python -m
    training.calibrate`), applied after the analyzer's rules. Absent: the score is reported."""

    @property
    def served_conf(self) -> float:
        """The confidence threshold the model was chosen at (`cdat threshold` on val) and
        evaluated at on test: its `served_conf` metric, which registering copies from the
        report. For the vehicle gate: the vehicle probability under which a photo is refused."""
        value = self.metrics.get("served_conf")
        if isinstance(value, int | float) and 0.0 < value < 1.0:
            return float(value)
        return DEFAULT_SERVED_CONF[self.task]

    @property
    def base_conf(self) -> float:
        """The threshold the model reports from on its own: its verifier rule's `base_conf`
        where it is served with a damage verifier (it then runs at `served_conf`, lower, and
        the verifier confirms what lies between), else `served_conf`."""
        verifier = self.served_verifier
        return self.served_conf if verifier is None else verifier.rule.base_conf

    @property
    def served_calibration(self) -> ConfidenceCalibration | None:
        """The calibration this damage model's scores are read through (None: raw scores)."""
        if not self.confidence_calibration:
            return None
        try:
            return ConfidenceCalibration.from_record(self.confidence_calibration)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: confidence_calibration: {exc}") from exc

    @property
    def served_whole_car_rule(self) -> WholeCarRule | None:
        """The whole-car rule this model is served with (None: every view alike)."""
        if not self.whole_car_rule:
            return None
        try:
            return WholeCarRule.from_record(self.whole_car_rule)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: whole_car_rule: {exc}") from exc

    @property
    def served_family_stage(self) -> StageRecord[FamilyRule] | None:
        """The part-family stage this part model is served with (None: masks alone)."""
        if not self.family_stage:
            return None
        try:
            return StageRecord.from_record(self.family_stage, FamilyRule.from_record)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: family_stage: {exc}") from exc

    @property
    def served_verifier(self) -> StageRecord[VerifierRule] | None:
        """The damage verifier this damage model is served with (None: none)."""
        if not self.verifier:
            return None
        try:
            return StageRecord.from_record(self.verifier, VerifierRule.from_record)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: verifier: {exc}") from exc

    @property
    def served_closeup_verifier(self) -> StageRecord[VerifierRule] | None:
        """The verifier that reads this damage model's photos which are no whole-car view
        (None: its verifier reads every photo)."""
        if not self.closeup_verifier:
            return None
        verifier = self.served_verifier
        try:
            stage = StageRecord.from_record(self.closeup_verifier, VerifierRule.from_record)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: closeup_verifier: {exc}") from exc
        if verifier is None:
            raise RegistryError(f"{self.id}: closeup_verifier without a verifier")
        if stage.rule.base_conf != verifier.rule.base_conf:  # the model reports from one
            raise RegistryError(
                f"{self.id}: closeup_verifier: base_conf {stage.rule.base_conf} is not the "
                f"verifier's {verifier.rule.base_conf}"
            )
        return stage

    @property
    def served_detector_where_found(self) -> ModelFile | None:
        """The second detector this damage model looks with where damage is found (None:
        none)."""
        if not self.detector_where_found:
            return None
        try:
            return ModelFile.from_record(self.detector_where_found)
        except (ValueError, TypeError, AttributeError) as exc:
            raise RegistryError(f"{self.id}: detector_where_found: {exc}") from exc

    @property
    def served_placer(self) -> StageRecord[PlacementRule] | None:
        """The damage placer this damage model is served with (None: none)."""
        if not self.placer:
            return None
        try:
            return StageRecord.from_record(self.placer, PlacementRule.from_record)
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{self.id}: placer: {exc}") from exc

    def passed(self, precision: str) -> dict[str, Any] | None:
        """The gate's record of `precision` (fp32 always passes), or None.

        Only a record whose accuracy on labelled val passed counts: a parity-only record
        (the first gate wrote those) says the detections moved little, not that damage is
        still found, so it never serves."""
        if precision == "fp32":
            return {"runtime": "any"}
        record = self.precisions.get(precision)
        if not isinstance(record, dict) or record.get("passed") is not True:
            return None
        accuracy = record.get("accuracy")
        return record if isinstance(accuracy, dict) and accuracy.get("passed") is True else None


@dataclass
class Registry:
    model_dir: Path
    entries: list[ModelEntry]
    promoted: dict[str, str]

    @classmethod
    def load(cls, model_dir: Path) -> Registry:
        path = model_dir / REGISTRY_FILE
        if not path.exists():
            return cls(model_dir, [], {})
        try:
            raw = json.loads(path.read_text())
            entries = [ModelEntry(**item) for item in raw.get("entries", [])]
        except (ValueError, TypeError) as exc:
            raise RegistryError(f"{path}: not a valid registry: {exc}") from exc
        return cls(model_dir, entries, dict(raw.get("promoted", {})))

    def save(self) -> None:
        self.model_dir.mkdir(parents=True, exist_ok=True)
        body = {"promoted": self.promoted, "entries": [_stored(e) for e in self.entries]}
        tmp = self.model_dir / (REGISTRY_FILE + ".tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.model_dir / REGISTRY_FILE)

    def get(self, entry_id: str) -> ModelEntry:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        raise RegistryError(f"no model '{entry_id}' in {self.model_dir / REGISTRY_FILE}")

    def promoted_entry(self, task: Task) -> ModelEntry:
        """The promoted model for a task, checked to exist on disk; else ModelUnavailable."""
        entry_id = self.promoted.get(task)
        if entry_id is None:
            raise ModelUnavailable(
                f"no {task} model is promoted in {self.model_dir}: train one "
                f"(cdat train) and promote it (cdat models promote)"
            )
        entry = self.get(entry_id)
        if not (self.model_dir / entry.file).is_file():
            raise ModelUnavailable(f"{task} model file missing: {self.model_dir / entry.file}")
        return entry

    def path_of(self, entry: ModelEntry) -> Path:
        return self.model_dir / entry.file

    def for_task(self, task: str) -> list[ModelEntry]:
        return [e for e in self.entries if e.task == task]

    def next_id(self, task: Task, stem: str) -> str:
        """`<stem>-<n>`, unique in this registry (stem e.g. 'damage-seg-n-20261125')."""
        taken = {e.id for e in self.entries}
        n = 1
        while f"{stem}-{n}" in taken:
            n += 1
        return f"{stem}-{n}"

    def verify(self, entry: ModelEntry) -> None:
        """The model file exists and matches its recorded SHA-256."""
        path = self.path_of(entry)
        if not path.is_file():
            raise RegistryError(
                f"model file missing for {entry.id}: {path} (a superseded model's file leaves "
                f"the tree: restore it from git history, e.g. `git log -- {path}`)"
            )
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise RegistryError(
                f"{path}: SHA-256 {actual[:12]}... does not match the registry's "
                f"{entry.sha256[:12]}... for {entry.id}"
            )

    def record_precision(self, entry_id: str, precision: str, record: dict[str, Any]) -> ModelEntry:
        """Store the precision gate's verdict on one precision of an entry. The one edit the
        tools make to an entry: the model is the same, only where it may run is learnt."""
        entry = self.get(entry_id)
        updated = replace(entry, precisions={**entry.precisions, precision: record})
        self.entries[self.entries.index(entry)] = updated
        return updated

    def register(self, entry: ModelEntry) -> ModelEntry:
        if entry.task not in TASKS:
            raise RegistryError(f"unknown task {entry.task!r} (expected one of {TASKS})")
        check_entry_id(entry.id)
        if any(e.id == entry.id for e in self.entries):
            raise RegistryError(f"a model with id '{entry.id}' is already registered")
        self.verify(entry)
        self.entries.append(entry)
        return entry

    def promote(self, entry_id: str, *, force: bool = False) -> list[str]:
        """Make `entry_id` its task's served model; returns the comparison lines.

        Compares gate metrics with the promoted model; raises PromotionRefused if the
        candidate is worse on any, or lacks one, unless `force`.
        """
        entry = self.get(entry_id)
        self.verify(entry)
        current_id = self.promoted.get(entry.task)
        lines: list[str] = []
        if current_id is not None and current_id != entry_id:
            lines, worse = compare_gate(entry, self.get(current_id))
            if worse and not force:
                raise PromotionRefused(
                    f"refusing to promote {entry_id} over {current_id}: "
                    + "; ".join(worse)
                    + " (use --force to override)"
                )
        self.promoted[entry.task] = entry_id
        return lines


def _stored(entry: ModelEntry) -> dict[str, Any]:
    """An entry as saved: no gate checked yet leaves out `precisions`, no rule leaves out
    `whole_car_rule`, one look leaves out `crop_look`, masks alone leave out `family_stage`,
    no verifier leaves out `verifier` (and `closeup_verifier`), no placer `placer`, one
    severity stage `closeup_severity_model`, one look on every photo `zoom_look_view_below`
    (and `zoom_look_where_found`), no middle look again `middle_look_where_found`, no second
    detector `detector_where_found`, no corner looks `corner_looks_where_found`, raw scores
    `confidence_calibration`, so that entries written before the fields existed stay byte
    for byte as they were."""
    body = asdict(entry)
    optional_fields = ("precisions", "whole_car_rule", "crop_look", "family_stage", "verifier",
                       "closeup_verifier", "closeup_severity_model",
                       "zoom_look_where_found", "middle_look_where_found",
                       "detector_where_found", "corner_looks_where_found",
                       "confidence_calibration")  # fmt: skip
    for optional in (*optional_fields, "placer"):
        if not body[optional]:
            del body[optional]
    for bar in ("closeup_severity_view_below", "zoom_look_view_below"):
        if body[bar] is None:  # a bar of 0 is kept, and refused
            del body[bar]
    return body


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
