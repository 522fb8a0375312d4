"""`cdat assess`: the same assessment as the service, on local files, without a server."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from cdat.analysis import PhotoInput
from cdat.assessment import Assessment, Reason, grouped_reasons
from cdat.claims import ClaimContext, PhotoMeta, Vehicle, photo_meta
from cdat.corrections import Corrections
from cdat.errors import CdatError
from cdat.findings import PhotoAnalysis
from cdat.merge import seen_again
from cdat.phash import InMemoryPhotoHashIndex
from cdat.pipeline import assess_claim, fraud_signals, load_policy
from cdat.record import encode
from cdat.settings import Settings
from cdat.taxonomy import CarPart
from mobile_api.claims.images import check_photo
from mobile_api.runtime import load_factory


class LocalInputError(CdatError):
    code = "invalid_input"


def read_inputs(settings: Settings, paths: list[Path]) -> list[tuple[PhotoInput, PhotoMeta]]:
    """Each photo's bytes, and what its EXIF tells the fraud rules (capture time, place)."""
    inputs = []
    for index, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LocalInputError(f"{path}: {exc.strerror}") from exc
        try:
            checked = check_photo(
                data,
                str(path),
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                min_side=settings.min_image_side,
            )
        except CdatError as exc:
            raise LocalInputError(exc.message) from exc
        photo_id = f"{index + 1}:{path.name}"
        meta = photo_meta(photo_id, checked.sha256, checked.exif)
        inputs.append((PhotoInput(photo_id=photo_id, data=data), meta))
    return inputs


def assess_files(
    settings: Settings, paths: list[Path], vehicle: Vehicle, loss_date: date, *, as_json: bool
) -> int:
    read = read_inputs(settings, paths)
    policy = load_policy(settings)
    analyzer = load_factory(settings.analyzer)(settings)
    context = local_context(vehicle, loss_date, [meta for _, meta in read])
    inputs = [photo for photo, _ in read]
    analyses = analyzer.analyze(inputs)
    signals = fraud_signals(analyses, context, InMemoryPhotoHashIndex(), (), policy)
    versions = analyzer.model_versions
    assessment = assess_claim(analyses, Corrections(), context, signals, versions, policy)
    if as_json:
        json.dump(encode(assessment), sys.stdout, indent=2)
        print()
    else:
        print(render_table(assessment))
    return 0


PART_WIDTH = max(len(p.value) for p in CarPart)
"""The part column fits the longest part's name (`back_right_quarter_panel`)."""
LABEL_WIDTH = PART_WIDTH + 21
"""Subtotal, tax and total line up under the line totals (part, operation, their gaps)."""


def render_table(assessment: Assessment) -> str:
    lines = []
    for photo in assessment.photos:
        lines.append(f"{photo.photo_id}  {photo.width}x{photo.height}")
        for issue in photo.quality_issues:
            lines.append(f"  ! {issue.code}: {issue.message}")
        lines.extend(_damage_lines(photo))
        if not photo.damages:
            lines.append("  no damage found")
    lines.extend(_estimate_lines(assessment))
    return "\n".join(lines)


def _damage_lines(photo: PhotoAnalysis) -> list[str]:
    """A photo's damages, numbered as the workspace numbers them; a damage that repeats a
    surer one (`cdat.merge.seen_again`: the analyzer's looks outline one damage again at
    another extent, and name it again as another type) is named on the line of the damage
    it repeats, not listed as a damage of its own."""
    again = seen_again(photo.damages)
    repeats: dict[tuple[int, str], list[int]] = {}
    for index in sorted(again):
        repeats.setdefault((again[index].under, again[index].how), []).append(index)
    lines = []
    for index, damage in enumerate(photo.damages):
        if index in again:
            continue
        part = damage.part.value if damage.part else "(no visible part)"
        line = (
            f"  #{index + 1:<3} {damage.damage_type.value:<14} {damage.severity.value:<9} "
            f"{part:<{PART_WIDTH}} conf {damage.certainty:.2f}"
        )
        said = [
            f"{words} {_numbers(repeats[(index, how)])}"
            for how, words in (("outline", "also outlined as"), ("name", "named again as"))
            if (index, how) in repeats
        ]
        if said:
            line += f"  ({'; '.join(said)})"
        lines.append(line)
    return lines


OUTLINES_NAMED = 4
"""A damage's outlines named by number on its line; the rest counted (some close-ups have
a dozen, and the line would no longer fit a terminal)."""


def _numbers(indices: list[int]) -> str:
    named = ", ".join(f"#{k + 1}" for k in indices[:OUTLINES_NAMED])
    rest = len(indices) - OUTLINES_NAMED
    return named if rest <= 0 else f"{named} and {rest} more"


def _estimate_lines(assessment: Assessment) -> list[str]:
    lines = []
    estimate = assessment.estimate
    if estimate is not None:
        lines.append(f"\nEstimate ({estimate.currency}, catalog {estimate.catalog_version})")
        for line in estimate.lines:
            part = line.part.value if line.part else "-"
            lines.append(
                f"  {part:<{PART_WIDTH}} {line.operation.value:<20} {line.total:>12}"
                f"  [{line.rule_id}]"
            )
        lines.append(f"  {'subtotal':<{LABEL_WIDTH}} {estimate.subtotal:>12}")
        lines.append(f"  {'tax':<{LABEL_WIDTH}} {estimate.tax:>12}")
        lines.append(
            f"  {'total':<{LABEL_WIDTH}} {estimate.total:>12}"
            f"  (range {estimate.low}-{estimate.high})"
        )
    if assessment.total_loss is not None:
        lines.append(
            f"Total loss: {'YES' if assessment.total_loss.is_total_loss else 'no'}"
            f" - {assessment.total_loss.explanation}"
        )
    if assessment.triage is not None:
        lines.append(
            f"Triage: {assessment.triage.decision.value} (priority {assessment.triage.priority})"
        )
        lines.extend(_reason_lines(_signals_named(assessment)))
    given = {r.message for r in assessment.triage.reasons} if assessment.triage else set()
    for signal in assessment.fraud_signals:
        if signal.message not in given:  # each signal is a triage reason: said there, once
            lines.append(f"Fraud signal {signal.code}: {signal.message}")
    return lines


def _signals_named(assessment: Assessment) -> list[Reason]:
    """Triage's reasons, a fraud signal's named by its code (`capture_time_missing: ...`)."""
    assert assessment.triage is not None
    codes = {signal.message: signal.code for signal in assessment.fraud_signals}
    return [
        replace(r, message=f"{codes[r.message]}: {r.message}")
        if r.code == "fraud_signal" and r.message in codes
        else r
        for r in assessment.triage.reasons
    ]


def _reason_lines(reasons: Sequence[Reason]) -> list[str]:
    """A code's reasons under it once: a claim of close-ups can give one per finding."""
    lines = []
    for group in grouped_reasons(reasons):
        if len(group.reasons) == 1:
            lines.append(f"  - {group.code}: {group.reasons[0].message}")
            continue
        explained = f": {group.shared_explanation}" if group.shared_explanation else ""
        lines.append(f"  - {group.code}, {len(group.reasons)} times{explained}:")
        lines.extend(f"      {item}" for item in group.items)
    return lines


def local_context(vehicle: Vehicle, loss_date: date, photos: Sequence[PhotoMeta]) -> ClaimContext:
    return ClaimContext(
        claim_id="local",
        vehicle=vehicle,
        loss_date=loss_date,
        loss_location=None,
        photos=tuple(photos),
    )
