"""`cdat models calibrate`: a damage entry again, its scores read as chances by curves.

The curves (`python -m training.calibrate`, fitted on val) change no damage the model
reports, where it is put or how it is priced: each damage keeps its score and carries its
chance beside it, which triage, the estimate's range and the workspace read. So the new
entry is the old one (file, stages, rules, looks, metrics, precision records) with the
curves added; its command says how they were fitted::

    cdat models calibrate damage-claims-seg-n-20261201-14 \\
        --calibration runs/calibration/val/calibration.json \\
        --command "CDAT_INFERENCE_PRECISION=fp32 python -m training.calibrate --split val ..."
    cdat models promote damage-claims-seg-n-20261201-15
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdat.errors import CdatError


def read_calibration(path: Path | None, task: str) -> dict[str, Any]:
    """`--calibration`'s curves as an entry stores them ({} without the option)."""
    if path is None:
        return {}
    from cdat.calibration import ConfidenceCalibration

    if task != "damage":
        raise CdatError(f"--calibration reads a damage model's scores, not a {task} model's")
    try:
        record = json.loads(path.read_text())
        return ConfidenceCalibration.from_record(record).to_record()
    except (OSError, ValueError, TypeError) as exc:
        raise CdatError(f"--calibration {path}: not a calibration ({exc})") from None


def cmd_calibrate(args: argparse.Namespace, registry: Any) -> int:
    from inference.errors import RegistryError

    try:
        entry = registry.get(args.id)
    except RegistryError as exc:
        raise CdatError(exc.message) from None
    curves = read_calibration(args.calibration, entry.task)
    new_id = (
        args.new_id
        if args.new_id is not None
        else registry.next_id(entry.task, entry.id.rsplit("-", 1)[0])
    )
    how = args.command or f"curves from {args.calibration}"
    calibrated = replace(
        entry,
        id=new_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        confidence_calibration=curves,
        command=f"{entry.command}; as {entry.id}, its scores read as chances: {how}",
    )
    registry.register(calibrated)
    registry.save()
    print(f"registered {new_id}: {entry.id} with its scores read as chances")
    return 0


def add_calibrate(msub: Any, handler: Any) -> None:
    """`handler` runs `cmd_calibrate` on the registry the `models` options name."""
    cal = msub.add_parser(
        "calibrate", help="a damage entry again, with curves that read its scores as chances"
    )
    cal.add_argument("id", help="the damage entry (cdat models list)")
    cal.add_argument(
        "--calibration", type=Path, required=True,
        help="calibration.json from python -m training.calibrate (fitted on val)",
    )  # fmt: skip
    cal.add_argument("--new-id", default=None, help="default: the entry's stem, next number")
    cal.add_argument(
        "--command", default=None, help="the command that fitted the curves, for the entry"
    )
    cal.set_defaults(handler=handler)
