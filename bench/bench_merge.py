"""Time of the rules that group one photo's damages, on real photos as the served models
see them: `named_again` (the estimate's merge, on every assessment and every adjuster
correction), `seen_again` (the workspace page, the overlay and `cdat assess`) and
`merge_findings` for the photo alone.

The photos are analysed once by the served analyzer (not timed), then each rule runs on
each photo's damages. Run it in two checkouts to compare two versions of `cdat/`::

    CDAT_DATA_ROOT=../shared/datasets python bench/bench_merge.py --out /tmp/merge.json
    python bench/bench_merge.py --limit 20 --source damage-severity
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from cdat.findings import PhotoAnalysis


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", default="damaged-parts", choices=["damaged-parts", "car-parts-damage"],
        help="part-named data set whose val photos are analysed",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=40, help="photos analysed (first in order)")
    parser.add_argument("--rounds", type=int, default=3, help="times each rule runs per photo")
    default_root = Path(os.environ.get("CDAT_DATA_ROOT", "../shared/datasets"))
    parser.add_argument("--data-root", type=Path, default=default_root, help="the data sets")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    return parser


def timed(rule: Callable[[], Any], rounds: int) -> float:
    """The fastest of `rounds` runs, in ms: the rule's own time, least disturbed."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        rule()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def rule_times(analyses: Sequence[PhotoAnalysis], rounds: int) -> dict[str, Any]:
    """Each rule's median, mean and longest time per photo (ms), beside the photos' damages."""
    from cdat.merge import merge_findings, named_again, seen_again

    rules: dict[str, Callable[[PhotoAnalysis], Any]] = {
        "named_again": lambda a: named_again(a.damages),
        "seen_again": lambda a: seen_again(a.damages),
        "merge_findings": lambda a: merge_findings([a]),
    }
    figures: dict[str, Any] = {
        "photos": len(analyses),
        "damages_per_photo": statistics.mean(len(a.damages) for a in analyses),
        "most_damages": max(len(a.damages) for a in analyses),
    }
    for name, rule in rules.items():
        times = [timed(lambda a=a, rule=rule: rule(a), rounds) for a in analyses]
        figures[name] = {
            "median_ms": round(statistics.median(times), 2),
            "mean_ms": round(statistics.mean(times), 2),
            "max_ms": round(max(times), 2),
        }
    return figures


def main(args: argparse.Namespace) -> int:
    from cdat.analysis import PhotoInput
    from cdat.errors import CdatError
    from training.claims import build_claim_analyzer
    from training.closeup import held_out_photos

    if args.limit < 1 or args.rounds < 1:
        print("error: --limit and --rounds must be positive", file=sys.stderr)
        return 2
    config = REPO / "datasets" / f"{args.source}.yaml"
    try:
        photos = held_out_photos(config, "val", 0, args.data_root.resolve())[: args.limit]
    except CdatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not photos:
        print(f"error: no {args.source} val photos under {args.data_root}", file=sys.stderr)
        return 2
    analyzer = build_claim_analyzer(None)
    analyses = [
        analyzer.analyze([PhotoInput(image.name, image.read_bytes())])[0] for image, _ in photos
    ]
    load = os.getloadavg()
    figures = {"command": " ".join(sys.argv), "checkout": str(REPO), "load_average": load}
    figures |= rule_times(analyses, args.rounds)
    for name in ("named_again", "seen_again", "merge_findings"):
        print(f"{name}: median {figures[name]['median_ms']} ms, max {figures[name]['max_ms']} ms")
    print(
        f"{len(analyses)} photos, {figures['damages_per_photo']:.1f} damages each "
        f"(most {figures['most_damages']})"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
