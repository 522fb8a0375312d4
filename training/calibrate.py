"""`python -m training.calibrate`: the damage model's scores read as chances, fitted on val.

The served analyzer runs, its scores uncalibrated, over a split's claim mix: the outlined
sources' held-out photos (`car-parts-damage`, `damaged-parts`, `damage-severity`), the intact
`car-parts` cars and their close-up windows. Each damage an adjuster reads (repeats of a
surer one left out: `cdat.merge.seen_again`) is a sample: its score, its photo's view as the
gate reads it, and whether it lies on a labelled region (at least `OFF_LABEL_SHARE` of its
mask inside one; none does on an intact car). A logistic curve in the score's log-odds is
fitted per view (cdat/calibration.py) and written as the registry record
`cdat models register --calibration` takes. Fit on val; read test once, to check::

    CDAT_INFERENCE_PRECISION=fp32 python -m training.calibrate --split val \\
        --out runs/calibration/val
    CDAT_INFERENCE_PRECISION=fp32 python -m training.calibrate --split test \\
        --check runs/calibration/val/calibration.json --out runs/calibration/test
    python -m training.calibrate --samples runs/calibration/val/samples.json \\
        --out runs/calibration/refit

Each run writes `samples.json`, `calibration.json` (a fit) or the checked one's figures, and
`report.json`: per view, the damages, the share on a label, and the expected calibration
error (ECE) of the score and of the chance.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cdat.calibration import ConfidenceCalibration, LogisticCurve
from cdat.findings import PhotoAnalysis
from training.errors import TrainingError, run_script
from training.eval_report import write_json

VIEWS = ("close_up", "whole_car", "view_unread")


@dataclass(frozen=True)
class CalibrationParams:
    whole_car_view_from: float = 0.5
    """The gate's whole-car probability from which a photo takes the whole-car curve (the
    bar the diagnostics read whole cars at)."""
    l2: float = 1e-3
    """Ridge on the curve's two numbers: a view with few damages must not fit a cliff."""
    bins: int = 10
    """Equal-width bins of the expected calibration error."""


@dataclass(frozen=True)
class Sample:
    source: str
    score: float
    view: float | None
    on_label: bool


def photo_samples(
    source: str, analysis: PhotoAnalysis, outlines: Sequence[Any]
) -> Iterator[Sample]:
    """The damages of one photo an adjuster reads, each with whether it lies on a label."""
    from cdat.merge import seen_again
    from training.outline_tally import damage_masks, off_labels

    repeats = seen_again(analysis.damages)
    masks = damage_masks(analysis)
    view = analysis.whole_car_view_probability
    for k, damage in enumerate(analysis.damages):
        if k not in repeats:
            on = bool(outlines) and not off_labels(masks[k], outlines)
            yield Sample(source, damage.confidence, view, on)


def collect(split: str, seed: int, data_root: Path | None) -> list[Sample]:
    """The served analyzer's damages over the split's claim mix, each with its score."""
    from cdat.analysis import PhotoInput
    from training.claim_eval import (
        DATASETS,
        OUTLINED,
        PART_NAMED,
        analyse,
        check_sources,
        outlines_of,
        typed_photos,
    )
    from training.claims import build_claim_analyzer
    from training.closeup import held_out_photos, part_families
    from training.intact_closeups import WINDOWS_PER_PHOTO, intact_closeups

    root = check_sources(data_root)
    analyzer = build_claim_analyzer(None)
    samples: list[Sample] = []
    for source in OUTLINED:
        config = DATASETS / f"{source}.yaml"
        families = part_families(config) if source in PART_NAMED else None
        photos = (
            held_out_photos(config, split, seed, root)
            if source in PART_NAMED
            else list(typed_photos(config, split, seed, root))
        )
        for image, instances in photos:
            analysis = analyse(analyzer, image)
            outlines = outlines_of(instances, (analysis.height, analysis.width), families)
            samples += photo_samples(source, analysis, outlines)
    cars = list(typed_photos(DATASETS / "car-parts.yaml", split, seed, root))
    for image, _ in cars:
        samples += photo_samples("car-parts", analyse(analyzer, image), [])
    for window in intact_closeups(cars, WINDOWS_PER_PHOTO):
        analysis = analyzer.analyze([PhotoInput(window.name, window.jpeg)])[0]
        samples += photo_samples("car-parts close-ups", analysis, [])
    return samples


def in_view(samples: Sequence[Sample], view: str, bar: float) -> list[Sample]:
    if view == "view_unread":
        return list(samples)
    whole = view == "whole_car"
    return [s for s in samples if s.view is not None and (s.view >= bar) == whole]


def log_odds(scores: np.ndarray) -> np.ndarray:
    from cdat.calibration import SCORE_FLOOR

    s = np.clip(scores, SCORE_FLOOR, 1.0 - SCORE_FLOOR)
    return np.log(s / (1.0 - s))


def fit_curve(samples: Sequence[Sample], l2: float) -> LogisticCurve:
    """Logistic regression of on-a-label on the score's log-odds (Newton's method)."""
    if not samples or len({s.on_label for s in samples}) < 2:
        raise TrainingError(
            f"{len(samples)} damages, all {'on' if samples and samples[0].on_label else 'off'} "
            "a label: a curve needs damages both on and off labels"
        )
    x = log_odds(np.array([s.score for s in samples]))
    y = np.array([s.on_label for s in samples], dtype=float)
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y) + l2 * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    slope, intercept = float(w[0]), float(w[1])
    if slope <= 0:
        raise TrainingError(f"fitted slope {slope:.4f}: the score does not rise with the chance")
    return LogisticCurve(round(slope, 6), round(intercept, 6))


def fit(samples: Sequence[Sample], params: CalibrationParams) -> ConfidenceCalibration:
    bar = params.whole_car_view_from
    curves = {}
    for view in VIEWS:
        try:
            curves[view] = fit_curve(in_view(samples, view, bar), params.l2)
        except TrainingError as exc:
            raise TrainingError(f"{view}: {exc}") from exc
    return ConfidenceCalibration(**curves, whole_car_view_from=bar)


def calibration_error(predicted: Sequence[float], actual: Sequence[bool], bins: int) -> float:
    """Expected calibration error: |mean predicted - share true| per equal-width bin,
    weighted by the bin's share of the damages."""
    if not predicted:
        return math.nan
    p, y = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += float(inside.sum()) * abs(float(p[inside].mean() - y[inside].mean()))
    return round(total / len(p), 4)


def view_report(
    samples: Sequence[Sample], calibration: ConfidenceCalibration, bins: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for view in VIEWS:
        inside = in_view(samples, view, calibration.whole_car_view_from)
        curve = getattr(calibration, view)
        scores = [s.score for s in inside]
        chances = [curve.chance(s.score) for s in inside]
        actual = [s.on_label for s in inside]
        out[view] = {
            **_figures(scores, chances, actual, bins),
            "per_source": {
                source: _figures(
                    [s.score for s in of], [curve.chance(s.score) for s in of],
                    [s.on_label for s in of], bins,
                )
                for source in sorted({s.source for s in inside})
                for of in [[s for s in inside if s.source == source]]
            },
        }  # fmt: skip
    return out


def _figures(
    scores: Sequence[float], chances: Sequence[float], actual: Sequence[bool], bins: int
) -> dict[str, Any]:
    """How many damages, the share on a label, each reading's calibration error, and the
    mean chance: a source whose mean chance is far from its share on a label is one the
    curve reads wrongly (a calibrated mix can hide one)."""
    return {
        "damages": len(actual),
        "on_label": round(sum(actual) / len(actual), 4) if actual else None,
        "ece_score": calibration_error(scores, actual, bins),
        "ece_chance": calibration_error(chances, actual, bins),
        "mean_chance": round(float(np.mean(chances)), 4) if chances else None,
    }


def read_samples(path: Path) -> list[Sample]:
    try:
        rows = json.loads(path.read_text())
        return [Sample(**row) for row in rows]
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"--samples {path}: no samples file of this tool ({exc})") from exc


def read_calibration(path: Path) -> ConfidenceCalibration:
    try:
        return ConfidenceCalibration.from_record(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"--check {path}: not a calibration ({exc})") from exc


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument(
        "--split", default="val", choices=["val", "test"],
        help="held-out split whose claim mix is analysed (fit on val; test only with --check)",
    )  # fmt: skip
    parser.add_argument(
        "--samples", type=Path, default=None,
        help="a samples.json an earlier run wrote: fit or check from it, no photo analysed",
    )  # fmt: skip
    parser.add_argument(
        "--check", type=Path, default=None,
        help="a calibration.json to measure instead of fitting one (how test is read)",
    )  # fmt: skip
    defaults = CalibrationParams()
    parser.add_argument(
        "--whole-car-view-from", type=float, default=defaults.whole_car_view_from,
        help="the gate's whole-car probability from which the whole-car curve applies",
    )  # fmt: skip
    parser.add_argument(
        "--l2", type=float, default=defaults.l2, help="ridge on the curves' two numbers"
    )
    parser.add_argument("--seed", type=int, default=0, help="re-split seed (as converted)")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $CDAT_DATA_ROOT")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for samples.json, calibration.json and "
        "report.json",
    )  # fmt: skip
    return parser


def main(args: argparse.Namespace) -> int:
    if args.out.is_file():
        raise TrainingError(f"--out {args.out}: is a file; give a folder")
    if not 0.0 < args.whole_car_view_from <= 1.0:
        raise TrainingError(f"--whole-car-view-from {args.whole_car_view_from}: need 0 < p <= 1")
    if args.l2 < 0:
        raise TrainingError(f"--l2 {args.l2}: need 0 or more")
    if args.split == "test" and args.check is None:
        raise TrainingError("--split test fits nothing: give --check with a val fit")
    params = CalibrationParams(args.whole_car_view_from, args.l2)
    checked = None if args.check is None else read_calibration(args.check)
    if args.samples is not None:
        samples = read_samples(args.samples)
    else:
        samples = collect(args.split, args.seed, args.data_root)
    calibration = checked or fit(samples, params)
    report = {
        "split": args.split,
        "fitted" if checked is None else "checked": calibration.to_record(),
        "params": asdict(params),
        "views": view_report(samples, calibration, params.bins),
        "sources": {src: sum(s.source == src for s in samples) for src in sorted(
            {s.source for s in samples})},
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "samples.json", [asdict(s) for s in samples])
    if checked is None:
        write_json(args.out / "calibration.json", calibration.to_record())
    write_json(args.out / "report.json", report)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
