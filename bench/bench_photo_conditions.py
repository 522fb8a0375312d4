"""The served models under the conditions a policyholder's phone photo brings.

Every held-out set here is a 640 px export, saved once, shot in daylight. Real claims
come from phones: sent on through a messaging app that compresses them hard, taken at dusk
or under street lights, noisy, stored sideways with an EXIF orientation, at 12 megapixels.
This runs the claim measurement (`training.claim_eval.claim_report`: damage found per
source, part family, intact cars and close-ups with damage, photos without a vehicle
refused) on one split with every photo first put through one condition, so a figure that
falls under a condition says which real photos the models would fail on. Each condition
keeps the photo's geometry (or only scales it, or stores it rotated with the EXIF tag that
turns it back), so the labels still lie where they did.

    CDAT_DATA_ROOT=../shared/datasets CDAT_INFERENCE_PRECISION=fp32 \\
        .venv/bin/python bench/bench_photo_conditions.py --split val

Prints a table and writes bench/results/photo-conditions-<split>.json. Choose on val; a
test read is for a card, once. `--gate-only` measures the vehicle gate alone, in minutes:
the share of each split's gate photos (training/gate_data.py) its probability refuses, the
promoted gate beside a candidate `--gate`:

    .venv/bin/python bench/bench_photo_conditions.py --split test --gate-only \
        --gate runs/view/cond/gate-view.onnx
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.photo_conditions import CONDITIONS

RESULTS = Path(__file__).resolve().parent / "results"


def gate_refusals(
    gate: Any, photos: Sequence[Any], condition: Callable[[bytes], bytes]
) -> dict[str, float | None]:
    """What the gate alone refuses of `photos` (training.gate_data.GatePhoto) under the
    condition, as the analyzer refuses: a vehicle probability under the gate's threshold.
    Photos without a vehicle refused, close-ups refused, whole cars refused."""
    from inference.imaging import load_photo
    from training.gate_data import CLOSEUP_SOURCES, WHOLE_CAR_SOURCES

    refused: dict[str, list[bool]] = {}
    for start in range(0, len(photos), 16):
        chunk = photos[start : start + 16]
        images = [load_photo(condition(p.path.read_bytes())).image for p in chunk]
        for photo, probability in zip(chunk, gate.probabilities(images), strict=True):
            kind = ("no vehicle" if not photo.vehicle else "close-ups"
                    if photo.source in CLOSEUP_SOURCES else "whole cars"
                    if photo.source in WHOLE_CAR_SOURCES else "other")  # fmt: skip
            refused.setdefault(kind, []).append(bool(probability < gate.threshold))
    return {
        f"{kind} refused": (sum(r) / len(r) if r else None)
        for kind, r in ((k, refused.get(k, [])) for k in ("no vehicle", "close-ups", "whole cars"))
    }


class UnderCondition:
    """The served analyzer, each photo put through `condition` before it is read."""

    def __init__(self, analyzer: Any, condition: Callable[[bytes], bytes]) -> None:
        self._analyzer = analyzer
        self._condition = condition

    def analyze(self, photos: Sequence[Any]) -> list[Any]:
        changed = [replace(p, data=self._condition(p.data)) for p in photos]
        analyses: list[Any] = self._analyzer.analyze(changed)
        return analyses

    def __getattr__(self, name: str) -> Any:
        return getattr(self._analyzer, name)


FIGURES = (
    ("found cpd", ("damage_recall_iou30", "car-parts-damage")),
    ("found dp", ("damage_recall_iou30", "damaged-parts")),
    ("found ds", ("damage_recall_iou30", "damage-severity")),
    ("family cpd", ("part_family_accuracy", "car-parts-damage")),
    ("family dp", ("part_family_accuracy", "damaged-parts")),
    ("intact cars", ("intact_photos_with_damage",)),
    ("intact close-ups", ("intact_closeups_with_damage",)),
    ("no vehicle refused", ("non_vehicle_refused",)),
    ("close-ups refused", ("closeups_refused",)),
)
"""The headline figures of a claim report, each by its path in the report."""


def headline_row(report: dict[str, Any]) -> dict[str, float | None]:
    """The figures the table shows, by column name (None where the report has none)."""
    row: dict[str, float | None] = {}
    for name, path in FIGURES:
        value: Any = report
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        row[name] = None if value is None else float(value)
    return row


def table(rows: dict[str, dict[str, float | None]]) -> list[str]:
    names = [name for name, _ in FIGURES]
    width = max(len(c) for c in rows) if rows else 9
    lines = [f"{'condition':{width}}  " + "  ".join(names)]
    for condition, row in rows.items():
        cells = (f"{'-' if row[n] is None else f'{row[n]:.3f}':>{len(n)}}" for n in names)
        lines.append(f"{condition:{width}}  " + "  ".join(cells))
    return lines


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--split", default="val", choices=["val", "test"], help="held-out split (choose on val)"
    )
    parser.add_argument(
        "--conditions",
        nargs="+",
        default=list(CONDITIONS),
        help=f"conditions to measure, each a full pass (default all: {', '.join(CONDITIONS)})",
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="default: settings")
    parser.add_argument(
        "--gate",
        type=Path,
        default=None,
        help="a candidate vehicle gate .onnx, served at the threshold its file names "
        "(default: the promoted gate)",
    )
    parser.add_argument("--data-root", type=Path, default=None, help="default: CDAT_DATA_ROOT")
    parser.add_argument(
        "--gate-only",
        action="store_true",
        help="measure the vehicle gate alone (the promoted one, and --gate beside it)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: results/photo-conditions-<split>.json (-gate.json with --gate-only)",
    )
    return parser


def main(args: argparse.Namespace) -> int:
    if args.gate is not None and not args.gate.is_file():
        print(f"error: --gate {args.gate}: no such file", file=sys.stderr)
        return 2
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        print(f"error: unknown condition {unknown[0]!r} (one of {', '.join(CONDITIONS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    from cdat.errors import CdatError
    from training.claim_eval import check_sources, claim_report
    from training.claims import build_claim_analyzer, gate_at_its_threshold

    try:
        root = check_sources(args.data_root)
        analyzer = build_claim_analyzer(args.model_dir)
        candidate = None if args.gate is None else gate_at_its_threshold(args.gate)
    except CdatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.gate_only:
        return gate_only(args, root, analyzer.gate, candidate)
    if candidate is not None:
        analyzer.gate = candidate
    reports: dict[str, Any] = {}
    rows: dict[str, dict[str, float | None]] = {}
    for name in args.conditions:
        started = time.perf_counter()
        report = claim_report(UnderCondition(analyzer, CONDITIONS[name]), args.split, 0, root)
        reports[name] = {**report, "seconds": round(time.perf_counter() - started, 1)}
        rows[name] = headline_row(report)
        print("\n".join(table({name: rows[name]})), flush=True)
    print("\n".join(table(rows)))
    out = args.out or RESULTS / f"photo-conditions-{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "split": args.split,
        "machine": platform.processor() or platform.machine(),
        "conditions": {n: (CONDITIONS[n].__doc__ or "").split("\n")[0] for n in args.conditions},
        "figures": rows,
        "reports": reports,
    }
    out.write_text(json.dumps(body, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def gate_only(args: argparse.Namespace, root: Path, promoted: Any, candidate: Any) -> int:
    from training.gate_data import gate_photos

    if promoted is None and candidate is None:
        print("error: no gate is promoted: pass --gate", file=sys.stderr)
        return 2
    photos = gate_photos(args.split, root)
    gates = {"promoted": promoted, "candidate": candidate}
    figures: dict[str, dict[str, Any]] = {}
    for name in args.conditions:
        figures[name] = {
            label: gate_refusals(gate, photos, CONDITIONS[name])
            for label, gate in gates.items()
            if gate is not None
        }
        print(json.dumps({name: figures[name]}), flush=True)
    out = args.out or RESULTS / f"photo-conditions-{args.split}-gate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    versions = {label: gate.version for label, gate in gates.items() if gate is not None}
    body = {"split": args.split, "gates": versions, "photos": len(photos), "figures": figures}
    out.write_text(json.dumps(body, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
