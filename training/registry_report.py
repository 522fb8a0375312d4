"""What `cdat models register` reads from a report of `cdat evaluate`: its metrics, and the
serving choices (whole-car rule, stages, flags) the figures were measured with, each checked
before anything is copied into the registry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdat.errors import CdatError


def read_report(report_path: Path) -> dict[str, Any]:
    """The report `cdat evaluate` wrote (`--report`), or one error line saying what is wrong."""
    try:
        report = json.loads(report_path.read_text())
    except OSError as exc:
        raise CdatError(f"--report {report_path}: cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CdatError(f"--report {report_path}: not JSON ({exc})") from None
    if not isinstance(report, dict):
        raise CdatError(f"--report {report_path}: not a report of cdat evaluate (not an object)")
    return report


def report_metrics(report_path: Path | None) -> tuple[dict[str, Any], list[str]]:
    if report_path is None:
        return {}, []
    from inference.registry import EXTRA_METRICS

    report = read_report(report_path)
    missing = [k for k in ("split", "per_class") if k not in report]
    if missing:
        why = f"no {', '.join(missing)}"
        raise CdatError(f"--report {report_path}: not a report of cdat evaluate ({why})")
    keys = ("box_map50", "box_map50_95", "mask_map50", "mask_map50_95", *EXTRA_METRICS)
    metrics: dict[str, Any] = {k: report[k] for k in keys if k in report}
    metrics.update(split=report["split"], per_class=report["per_class"])
    details = ("per_source", "map50_per_source", "recall_per_type", "recall_per_severity",
               "closeup_per_family", "closeups_refused_per_source", "refused_per_source",
               "photos_per_source", "non_vehicle_with_damage", "claims",
               "damage_whole_car_rule", "claims_gate")  # fmt: skip
    for detail in details:
        if detail in report:
            metrics[detail] = report[detail]
    if "damage_whole_car_rule" in report:  # read once here, so promoting can trust it
        from cdat.whole_car import WholeCarRule

        try:
            WholeCarRule.from_record(report["damage_whole_car_rule"])
        except (ValueError, TypeError) as exc:
            raise CdatError(f"{report_path}: damage_whole_car_rule: {exc}") from exc
    if "severity_confusion" in report:
        metrics["severity_confusion"] = report["severity_confusion"]
    baseline = report.get("baseline")
    if baseline and baseline.get("id"):
        metrics["baseline"] = {k: baseline.get(k) for k in ("id", *keys)}
    return metrics, []


def report_whole_car_rule(report_path: Path | None, task: str) -> dict[str, Any]:
    """The whole-car rule the report's claim figures were measured with: the model is
    served as it was measured (`cdat evaluate --claims --whole-car-rule`)."""
    if report_path is None:
        return {}
    from cdat.whole_car import WholeCarRule

    record = read_report(report_path).get("whole_car_rule")
    if not record:
        return {}
    if task != "damage":
        raise CdatError(f"{report_path}: a whole-car rule belongs to a damage model, not {task}")
    try:
        return WholeCarRule.from_record(record).to_record()
    except (ValueError, TypeError) as exc:
        raise CdatError(f"{report_path}: whole_car_rule: {exc}") from exc


STAGES = {
    # report key: (the task whose entry carries it, what it is)
    "family_stage": ("parts", "part-family stage"),
    "verifier": ("damage", "damage verifier"),
    "closeup_verifier": ("damage", "close-up damage verifier"),
    "placer": ("damage", "damage placer"),
}


def checked_stage(
    report_path: Path | None, key: str, task: str, model_dir: Path, model: Path
) -> Any:
    """`_report_stage`'s stage, checked and not yet copied (None where there is none). A stage
    stored as a head must read `model`'s own layers."""
    if report_path is None:
        return None
    from cdat.part_family import FamilyRule
    from cdat.placement import PlacementRule
    from cdat.verified import VerifierRule
    from inference.registry import sha256_of
    from inference.stage_record import StageRecord

    record = read_report(report_path).get(key)
    if not record:
        return None
    owner, what = STAGES[key]
    if task != owner:
        raise CdatError(f"{report_path}: a {what} belongs to a {owner} model, not {task}")
    read_rule: Any = {"family_stage": FamilyRule.from_record, "verifier": VerifierRule.from_record,
                      "closeup_verifier": VerifierRule.from_record,
                      "placer": PlacementRule.from_record}[key]  # fmt: skip
    try:
        stage = StageRecord.from_record(record, read_rule)
    except (ValueError, TypeError) as exc:
        raise CdatError(f"{report_path}: {key}: {exc}") from exc
    source = Path(stage.file)
    if not source.is_file() or sha256_of(source) != stage.sha256:
        raise CdatError(f"{report_path}: {key} {source} is missing or not the file measured")
    from inference.errors import ModelUnavailable
    from inference.placer import twin_model
    from inference.stage_net import StageNet

    try:
        if key == "placer":
            twin_model(model, source)
        else:
            StageNet.load(source, 1, what, backbone=model)
    except ModelUnavailable as exc:
        raise CdatError(f"{report_path}: {key}: {exc}") from exc
    target = model_dir / source.name
    elsewhere = target.is_file() and source.resolve() != target.resolve()
    if elsewhere and sha256_of(target) != stage.sha256:  # another entry's: never overwritten
        raise CdatError(f"{target} exists: give the new {what} another name")
    return stage


def report_detector(report_path: Path | None, task: str, model_dir: Path) -> Any:
    """The second detector the report's figures were measured with (`cdat evaluate
    --detector-where-found`), as a `ModelFile` checked and not yet copied; None where it
    names none. A damaged record, a file missing or not the one measured, or one another
    entry's file of that name would overwrite is refused by name."""
    if report_path is None:
        return None
    record = read_report(report_path).get("detector_where_found")
    if not record:
        return None
    from inference.registry import sha256_of
    from inference.stage_record import ModelFile

    if task != "damage":
        raise CdatError(f"{report_path}: a second detector is a damage model's")
    try:
        detector = ModelFile.from_record(record)
    except ValueError as exc:
        raise CdatError(f"{report_path}: detector_where_found: {exc}") from exc
    source = Path(detector.file)
    if not source.is_file() or sha256_of(source) != detector.sha256:
        raise CdatError(
            f"{report_path}: detector_where_found {source} is missing or not the file measured"
        )
    target = model_dir / source.name
    elsewhere = target.is_file() and source.resolve() != target.resolve()
    if elsewhere and sha256_of(target) != detector.sha256:  # another entry's: never overwritten
        raise CdatError(f"{target} exists: give the new second detector another name")
    return detector


def check_closeup_verifier(report_path: Path | None, verifier: Any, closeup: Any) -> None:
    """A close-up verifier serves only beside a verifier, from the same threshold
    (`ModelEntry.served_closeup_verifier`): refused here, before anything is copied."""
    if closeup is None:
        return
    if verifier is None:
        raise CdatError(
            f"{report_path}: a close-up damage verifier reads close-ups beside a damage "
            "verifier, and the report has none"
        )
    if closeup.rule.base_conf != verifier.rule.base_conf:
        raise CdatError(
            f"{report_path}: the close-up damage verifier's base_conf {closeup.rule.base_conf} "
            f"is not the damage verifier's {verifier.rule.base_conf}"
        )


def report_flag(report_path: Path | None, name: str) -> bool:
    """A serving choice the report's figures were measured with (true only if stated)."""
    if report_path is None:
        return False
    return read_report(report_path).get(name) is True


def report_view_bar(report_path: Path | None, name: str) -> float | None:
    """A gate view bar the report's figures were measured with (`cdat evaluate
    --zoom-look-view-below`), None where it names none; one that is no probability above 0
    is a damaged report, refused by name."""
    if report_path is None:
        return None
    bar = read_report(report_path).get(name)
    if bar is None:
        return None
    if isinstance(bar, bool) or not isinstance(bar, int | float) or not 0.0 < bar <= 1.0:
        raise CdatError(f"--report {report_path}: {name} {bar!r} is no probability above 0")
    return float(bar)


def check_looks(report_path: Path | None) -> None:
    """A report measured with the mirrored look describes a model no entry can serve (only
    the middle look is an entry's to keep)."""
    if report_path is not None and "mirrored" in (
        read_report(report_path).get("second_looks") or ()
    ):
        raise CdatError(
            f"--report {report_path}: measured with the mirrored second look "
            "(CDAT_DAMAGE_FLIP_TTA), which no registered model is served with; evaluate again "
            "without it"
        )
