"""How often would the capture page's framing advice be right, and how often wrong?

The capture page tells a claimant to step back when an overview shot reads as a close-up,
and to move closer when a damage close-up reads as the whole car
(`mobile_api/capture/framing.py`), from the served gate's `whole_car_view` output. This
reads that output on a split's photos whose view is known, decoded as the quick check
decodes an upload, and prints, for each bar asked, the share of each source that would be
told so:

* step back (whole-car probability under `--overview-below`): wrong for `car-parts` whole
  cars, right for close-ups (`damaged-parts`, `car-parts-damage`, and close-up windows cut
  from the `car-parts` cars, `training/intact_closeups.py`);
* move closer (over `--closeup-above`): wrong for the close-ups, right for whole cars.

Bars are chosen on val (the largest step-back bar and the smallest move-closer bar that
tell at most `--max-wrong` of every well-framed source otherwise); test is read once for
the chosen pair with `--split test --overview-below X --closeup-above Y`::

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_capture_framing.py \\
        --split val --out bench/results/capture-framing-val.json

About ten seconds on the 2-core CPU (every photo of the split is decoded and read once).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from inference.imaging import load_photo  # noqa: E402
from inference.vehicle_gate import VehicleGate, load_gate  # noqa: E402
from training.dataconfig import default_data_root  # noqa: E402
from training.gate_data import vehicle_photos  # noqa: E402
from training.view_head import CLOSEUPS, WHOLE_CARS, WINDOWS, whole_car_windows  # noqa: E402

OVERVIEW_BARS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
CLOSEUP_BARS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--split",
        default="val",
        choices=("val", "test"),
        help="which split's photos to read (choose on val)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=REPO / "inference/models",
        help="the registry whose promoted gate is read",
    )
    parser.add_argument(
        "--overview-below",
        type=float,
        nargs="+",
        default=OVERVIEW_BARS,
        help="step-back bars to read",
    )
    parser.add_argument(
        "--closeup-above",
        type=float,
        nargs="+",
        default=CLOSEUP_BARS,
        help="move-closer bars to read",
    )
    parser.add_argument(
        "--max-wrong",
        type=float,
        default=0.02,
        help="the most of a well-framed source a chosen bar may advise wrongly",
    )
    parser.add_argument("--seed", type=int, default=0, help="the split seed of the configs")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "bench/results/capture-framing.json",
        help="where the JSON goes",
    )
    return parser  # fmt: skip


def views(gate: VehicleGate, images: list[bytes]) -> np.ndarray:
    """The whole-car probability of each encoded photo, decoded as an upload is."""
    out = []
    for start in range(0, len(images), 16):
        decoded = [load_photo(data).image for data in images[start : start + 16]]
        reading = gate.read(decoded)
        if reading.whole_car_view is None:
            raise SystemExit("error: the promoted gate reads no view")
        out.append(reading.whole_car_view)
    return np.concatenate(out) if out else np.zeros(0)


def source_views(gate: VehicleGate, split: str, root: Path, seed: int) -> dict[str, np.ndarray]:
    found = {}
    for source in (WHOLE_CARS, *CLOSEUPS):
        paths = [p.path for p in vehicle_photos(source, split, root, seed)]
        found[source] = views(gate, [p.read_bytes() for p in paths])
    found[WINDOWS] = views(gate, [w.jpeg for w in whole_car_windows(split, root, seed)])
    return found


def shares(p: dict[str, np.ndarray], below: list[float], above: list[float]) -> dict[str, Any]:
    return {
        "step_back": {
            str(bar): {s: round(float((v < bar).mean()), 4) for s, v in p.items()} for bar in below
        },
        "move_closer": {
            str(bar): {s: round(float((v > bar).mean()), 4) for s, v in p.items()} for bar in above
        },
    }


def chosen(table: dict[str, Any], max_wrong: float) -> dict[str, float | None]:
    """The largest step-back bar and smallest move-closer bar within `max_wrong`."""
    step = [float(b) for b, row in table["step_back"].items() if row[WHOLE_CARS] <= max_wrong]
    closer = [
        float(b)
        for b, row in table["move_closer"].items()
        if all(row[s] <= max_wrong for s in (*CLOSEUPS, WINDOWS))
    ]
    return {"overview_below": max(step, default=None), "closeup_above": min(closer, default=None)}


def main(args: argparse.Namespace) -> int:
    gate = load_gate(args.model_dir, threads=2)
    if gate is None:
        print("error: no gate is promoted", file=sys.stderr)
        return 2
    p = source_views(gate, args.split, default_data_root(), args.seed)
    table = shares(p, args.overview_below, args.closeup_above)
    result = {
        "split": args.split,
        "gate": gate.version,
        "photos": {s: int(v.size) for s, v in p.items()},
        **table,
        "chosen": chosen(table, args.max_wrong),
    }
    for kind in ("step_back", "move_closer"):
        for bar, row in table[kind].items():
            print(kind, bar, "  ".join(f"{s} {v:.3f}" for s, v in row.items()))
    print("chosen", result["chosen"], "photos", result["photos"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
