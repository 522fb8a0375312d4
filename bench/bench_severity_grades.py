"""Photo-level severity on a second source: the served pipeline against damaged-parts' grades.

`damaged-parts` file names start with `minor_`, `moderate_` or `major_` (or `damage_`, no
grade). The publisher does not document them, but they behave like a per-photo severity
grade: every source photo carries one prefix across its augmented copies, and from minor to
major the photos hold more damaged regions (1.4, 2.1, 2.9 on average) and more broken lamps
and glass. The severity stage never saw this set (it learns from `damage-severity` only), so
this measures how the served severity carries to other photos, at photo level: the most
severe damage the pipeline reports on a photo against its grade (major = severe). And what
each photo's claim is priced at (`cdat.estimate.build_estimate`, the shipped INR catalog
and rules, one midsize car for every photo), per grade: how many photos get a part
replaced, how many by a rule on how much of the part is damaged, and the median total.
A minor close-up priced with a new panel is the estimate's most common overcharge.

Held-out photos only (the configs' re-split, seed 0, val and test: the damage detector
trained on the train share's lamp and glass regions). Served as a claim would be: the
analyzer the service builds (`inference.loading.build_analyzer`: every promoted model and
stage, the vehicle gate, the damage verifier and whole-car rule among them), each photo a
claim of its own whose severity is the worst of its findings (`cdat.merge.merge_findings`:
where the claim's rules, not each raw detection, decide it). Until 2026-12-05 this bench
ran the damage model alone at its served threshold, without the verifier that threshold
is served with (dozens of damages a close-up), and read the worst raw damage.

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_severity_grades.py

With `--source damage-severity`, the same on damage-severity's photos (its own split), each
photo graded by the worst severity labelled on it: the whole-car photos the severity stage
learnt from, where a close-up stage must not cost what the first stage reads well::

    python bench/bench_severity_grades.py --source damage-severity --splits val \
        --output bench/results/severity_grades_damage_severity.json

With `--source car-parts-damage`, on car-parts-damage's close-ups from many other sources,
graded by eye (`datasets/car-parts-damage-grades.csv`, its card says how)::

    python bench/bench_severity_grades.py --source car-parts-damage --splits val \
        --output bench/results/severity_grades_car_parts_damage.json

Prints a summary and writes bench/results/severity_grades.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from cdat.analysis import PhotoInput
from cdat.assessment import Operation
from cdat.catalog import ClassDecision, VehicleClass
from cdat.estimate import Pricing, build_estimate
from cdat.findings import PhotoAnalysis
from cdat.merge import merge_findings
from cdat.pipeline import load_policy
from cdat.settings import Settings
from cdat.taxonomy import Severity
from inference.loading import build_analyzer
from inference.pipeline import Analyzer
from training.closeup import DEFAULT_CONFIG, PHOTO_GRADES, held_out_photos, photo_grader

RESULTS = Path(__file__).resolve().parent / "results" / "severity_grades.json"
CPD_CONFIG = Path(__file__).resolve().parent.parent / "datasets" / "car-parts-damage.yaml"
"""Its photos are graded by eye (`photo_grades` there; datasets/car-parts-damage.md)."""
NONE_FOUND = "none found"
COLUMNS = [NONE_FOUND, *(s.value for s in Severity)]


def photo_severity(analysis: PhotoAnalysis) -> str:
    """The most severe finding of a claim of this photo alone, or that none was found."""
    findings = merge_findings([analysis])
    if not findings:
        return NONE_FOUND
    return max((f.severity for f in findings), key=lambda s: s.rank).value


@dataclass(frozen=True)
class Priced:
    """A claim of one photo, as priced."""

    replaced: bool
    replaced_for_coverage: bool
    """A part replaced by a rule with a `min_coverage` (how much of the part is damaged)."""
    total: Decimal


def bench_pricing(settings: Settings) -> Pricing:
    policy = load_policy(settings)
    midsize = ClassDecision(VehicleClass.MIDSIZE, "bench: one class for every photo")
    return Pricing(policy.catalog, policy.rules, policy.region, midsize)


def priced(analysis: PhotoAnalysis, pricing: Pricing) -> Priced:
    estimate = build_estimate(merge_findings([analysis]), pricing)
    by_coverage = {r.id for r in pricing.rules.rules if r.replaces and r.when.min_coverage > 0}
    replacing = [line for line in estimate.lines if line.operation is Operation.REPLACE]
    return Priced(
        replaced=bool(replacing),
        replaced_for_coverage=any(line.rule_id in by_coverage for line in replacing),
        total=estimate.total,
    )


def summarise_prices(rows: list[tuple[Severity, Priced]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for grade in PHOTO_GRADES.values():
        mine = [p for g, p in rows if g is grade]
        out[grade.value] = {
            "photos": len(mine),
            "with_a_replacement": sum(p.replaced for p in mine),
            "replaced_for_coverage": sum(p.replaced_for_coverage for p in mine),
            "median_total": str(statistics.median([p.total for p in mine])) if mine else None,
        }
    return out


def served_analyzer(model_dir: Path | None) -> Analyzer:
    """The analyzer the service builds from `model_dir` (default: the shipped models)."""
    return build_analyzer(Settings() if model_dir is None else Settings(model_dir=model_dir))


def summarise(pairs: list[tuple[Severity, str]]) -> dict[str, Any]:
    rows = [g.value for g in PHOTO_GRADES.values()]
    matrix = np.zeros((len(rows), len(COLUMNS)), np.int64)
    for grade, predicted in pairs:
        matrix[rows.index(grade.value), COLUMNS.index(predicted)] += 1
    found = matrix[:, 1:]
    per_grade = {
        row: {
            "photos": int(matrix[k].sum()),
            "none_found": int(matrix[k, 0]),
            "right_when_found": float(found[k, k] / found[k].sum()) if found[k].sum() else None,
        }
        for k, row in enumerate(rows)
    }
    recalls = [
        v["right_when_found"] for v in per_grade.values() if v["right_when_found"] is not None
    ]
    ranks = [(g.rank, Severity(p).rank) for g, p in pairs if p != NONE_FOUND]
    return {
        "photos": len(pairs),
        "photos_with_damage_found": int(found.sum()),
        "accuracy_when_found": float(np.trace(found) / found.sum()) if found.sum() else None,
        "balanced_accuracy_when_found": float(np.mean(recalls)) if recalls else None,
        "spearman_when_found": _spearman(ranks),
        "per_grade": per_grade,
        "confusion": {"rows": rows, "columns": COLUMNS, "matrix": matrix.tolist()},
    }


def _spearman(ranks: list[tuple[int, int]]) -> float | None:
    """Rank correlation with tied values sharing their mean rank (three levels tie a lot)."""
    if len(ranks) < 3:
        return None
    a, b = (_mean_ranks(np.array(col, np.float64)) for col in zip(*ranks, strict=True))
    if a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _mean_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values):
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def worst_labelled(instances: list[tuple[str, Any]]) -> Severity | None:
    """The worst severity of a typed set's labels (`severe-dent`, ...), or None unlabelled."""
    found = [Severity(name.partition("-")[0]) for name, _ in instances]
    return max(found, key=lambda s: s.rank) if found else None


def graded_photos(source: str, config: Path, split: str) -> list[tuple[Path, Severity]]:
    """The held-out photos of `source` with their grade: damaged-parts' file-name grade,
    damage-severity's worst labelled damage, or car-parts-damage's grade by eye."""
    if source == "damage-severity":
        from training.claim_eval import DATASETS, typed_photos
        from training.dataconfig import default_data_root

        photos = typed_photos(DATASETS / "damage-severity.yaml", split, 0, default_data_root())
        pairs = [(image, worst_labelled(instances)) for image, instances in photos]
    else:
        config = CPD_CONFIG if source == "car-parts-damage" else config
        grade_of = photo_grader(config)
        pairs = [(photo, grade_of(photo)) for photo, _ in held_out_photos(config, split, 0)]
    return [(photo, grade) for photo, grade in pairs if grade is not None]


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source",
        choices=["damaged-parts", "damage-severity", "car-parts-damage"],
        default="damaged-parts",
        help="graded by file name (damaged-parts close-ups), by the worst labelled damage "
        "(damage-severity's photos) or by an engineer's eye (car-parts-damage close-ups: "
        "datasets/car-parts-damage-grades.csv)",
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="damaged-parts config")
    parser.add_argument("--splits", nargs="+", default=["val", "test"], help="held-out splits")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the shipped models")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON written here")
    return parser


def main(args: argparse.Namespace) -> int:
    analyzer = served_analyzer(args.model_dir)
    pricing = bench_pricing(Settings())
    pairs: list[tuple[Severity, str]] = []
    prices: list[tuple[Severity, Priced]] = []
    for split in args.splits:
        for photo, grade in graded_photos(args.source, args.config, split):
            (analysis,) = analyzer.analyze([PhotoInput(photo.name, photo.read_bytes())])
            pairs.append((grade, photo_severity(analysis)))
            prices.append((grade, priced(analysis, pricing)))
    summary = summarise(pairs)
    summary["priced_per_grade"] = summarise_prices(prices)
    body = {
        "benchmark": "severity_grades",
        "command": "python bench/bench_severity_grades.py " + " ".join(sys.argv[1:]),
        "models": analyzer.model_versions,
        "source": args.source,
        "splits": args.splits,
        "python": platform.python_version(),
        **summary,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(body, indent=1) + "\n")
    print(f"{summary['photos']} graded held-out {args.source} photos, damage found on "
          f"{summary['photos_with_damage_found']}")  # fmt: skip
    found = {k: summary[f"{k}_when_found"] for k in ("accuracy", "balanced_accuracy", "spearman")}
    print("where found: " + ", ".join(f"{k} {v:.3f}" for k, v in found.items() if v is not None))
    print("grade \\ most severe found: " + ", ".join(COLUMNS))
    for row, counts in zip(
        summary["confusion"]["rows"], summary["confusion"]["matrix"], strict=True
    ):
        print(f"  {row}: {counts}")
    print("grade: photos, with a replacement, replaced for coverage, median total INR")
    for grade, p in summary["priced_per_grade"].items():
        print(f"  {grade}: {p['photos']}, {p['with_a_replacement']}, "
              f"{p['replaced_for_coverage']}, {p['median_total']}")  # fmt: skip
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
