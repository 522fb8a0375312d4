"""The stored assessment: one typed, versioned record and its one codec.

Every reader and writer of an assessment version goes through `encode` / `decode`;
nothing else knows the JSON layout. `FORMAT` counts layout changes: `decode` upgrades
older layouts it can still read and refuses newer ones, naming the version.

Format 1 (before this module) had a derived `usable` flag on each photo and no
`format` key; format 2 drops `usable` (it follows from the quality issues) and adds
`format`. Format 3 adds each finding's `coverage_cut_off` and each estimate line's
`repair_or_replace_undecided` (a format 2 record reads them as False, as it was priced).
Format 4 adds each finding's `named_again` (older records read it as False). Format 5 adds
each photo's `whole_car_view_probability` (older records read it as None: no view was read).
Format 6 adds each photo's `severity_read_close_up` (older records read it as False).
Format 7 adds each damage's and finding's `chance` (older records read it as None: their
confidence is what triage read). Format 8 adds each finding's `part_outlined` (older
records read it as True: they were described by the coverage they stored).
Perceptual hashes are never stored here: they live in the hash index.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cdat.assessment import Assessment
from cdat.errors import CdatError

FORMAT = 8
_ADAPTER = TypeAdapter(Assessment)


class RecordError(CdatError):
    code = "assessment_record_unreadable"


def encode(assessment: Assessment) -> dict[str, Any]:
    photos = tuple(dataclasses.replace(p, perceptual_hash=None) for p in assessment.photos)
    body: dict[str, Any] = _ADAPTER.dump_python(
        dataclasses.replace(assessment, photos=photos), mode="json"
    )
    for photo in body["photos"]:
        photo.pop("perceptual_hash")
    return {"format": FORMAT, **body}


def decode(raw: dict[str, Any]) -> Assessment:
    version = raw.get("format", 1)
    if not isinstance(version, int) or not 1 <= version <= FORMAT:
        raise RecordError(f"assessment record format {version!r}: this service reads 1-{FORMAT}")
    body = {k: v for k, v in raw.items() if k != "format"}
    if version == 1:
        body["photos"] = [
            {k: v for k, v in photo.items() if k != "usable"} for photo in body.get("photos", [])
        ]
    try:
        return _ADAPTER.validate_python(body)
    except ValidationError as exc:
        raise RecordError(f"assessment record does not match format {version}: {exc}") from exc
