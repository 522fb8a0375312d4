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
test read is for a card, once.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
PHONE_SIDE = 4032
"""The long side of a 12-megapixel phone photo (4032 x 3024)."""
SIDEWAYS_ORIENTATION = 6
"""EXIF orientation 'rotate 90 degrees clockwise to view': how phones store portrait shots."""


def _decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable photo")
    return image


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the photo as JPEG")
    return encoded.tobytes()


def stored(data: bytes) -> bytes:
    """The photo as the data set holds it."""
    return data


def messaging_app(data: bytes) -> bytes:
    """Sent on through a messaging app: JPEG re-encoded at quality 30."""
    return _jpeg(_decode(data), 30)


def dusk(data: bytes) -> bytes:
    """Under-exposed by about 1.3 stops: the light scaled by 0.4 in linear light."""
    srgb = _decode(data).astype(np.float32) / 255.0
    linear = np.power(srgb, 2.2) * 0.4
    return _jpeg(np.clip(np.power(linear, 1 / 2.2) * 255.0 + 0.5, 0, 255).astype(np.uint8), 92)


def sensor_noise(data: bytes) -> bytes:
    """High-ISO sensor noise: Gaussian, sigma 10 of 255, the same noise for a given photo."""
    image = _decode(data)
    seed = int.from_bytes(data[-8:].ljust(8, b"\0"), "little") % (2**32)
    noise = np.random.default_rng(seed).normal(0.0, 10.0, image.shape)
    return _jpeg(np.clip(image + noise, 0, 255).astype(np.uint8), 92)


def street_light(data: bytes) -> bytes:
    """A warm cast, as under sodium or tungsten light: red up a fifth, blue down 30%."""
    gains = np.array([0.7, 1.0, 1.2], np.float32)  # OpenCV's channel order is B, G, R
    image = _decode(data).astype(np.float32) * gains
    return _jpeg(np.clip(image, 0, 255).astype(np.uint8), 92)


def phone_size(data: bytes) -> bytes:
    """The same picture at a phone's 4032 px long side (bicubic), JPEG quality 92: the
    service reads large photos by a reduced decode, then resizes."""
    image = _decode(data)
    height, width = image.shape[:2]
    scale = PHONE_SIDE / max(height, width)
    size = (round(width * scale), round(height * scale))
    return _jpeg(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), 92)


def sideways(data: bytes) -> bytes:
    """Stored as a phone stores a portrait shot: the pixels turned a quarter to the left
    and EXIF orientation 6, which turns them back for viewing."""
    from PIL import Image

    image = _decode(data)
    turned = cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    pil = Image.fromarray(cv2.cvtColor(turned, cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = SIDEWAYS_ORIENTATION
    out = io.BytesIO()
    pil.save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


CONDITIONS: dict[str, Callable[[bytes], bytes]] = {
    "stored": stored,
    "messaging-app": messaging_app,
    "dusk": dusk,
    "sensor-noise": sensor_noise,
    "street-light": street_light,
    "phone-size": phone_size,
    "sideways": sideways,
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
    parser.add_argument("--data-root", type=Path, default=None, help="default: CDAT_DATA_ROOT")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: results/photo-conditions-<split>.json"
    )
    return parser


def main(args: argparse.Namespace) -> int:
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        print(f"error: unknown condition {unknown[0]!r} (one of {', '.join(CONDITIONS)})",
              file=sys.stderr)  # fmt: skip
        return 2
    from cdat.errors import CdatError
    from training.claim_eval import check_sources, claim_report
    from training.claims import build_claim_analyzer

    try:
        root = check_sources(args.data_root)
        analyzer = build_claim_analyzer(args.model_dir)
    except CdatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    raise SystemExit(main(get_args_parser().parse_args()))
