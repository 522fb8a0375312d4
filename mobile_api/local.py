"""`cdat assess`: the same assessment as the service, on local files, without a server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cdat.analysis import PhotoInput
from cdat.assessment import Assessment
from cdat.errors import CdatError
from cdat.settings import Settings
from mobile_api.images import check_photo
from mobile_api.runtime import load_factory
from mobile_api.serialize import assessment_body


class LocalInputError(CdatError):
    code = "invalid_input"


def read_inputs(settings: Settings, paths: list[Path]) -> list[PhotoInput]:
    inputs = []
    for index, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LocalInputError(f"{path}: {exc.strerror}") from exc
        try:
            check_photo(
                data,
                str(path),
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                min_side=settings.min_image_side,
            )
        except CdatError as exc:
            raise LocalInputError(exc.message) from exc
        inputs.append(PhotoInput(photo_id=f"{index + 1}:{path.name}", data=data))
    return inputs


def assess_files(settings: Settings, paths: list[Path], *, as_json: bool) -> int:
    inputs = read_inputs(settings, paths)
    analyzer = load_factory(settings.analyzer)(settings)
    analyses = analyzer.analyze(inputs)
    assessment = Assessment(
        photos=tuple(analyses), findings=(), model_versions=dict(analyzer.model_versions)
    )
    if as_json:
        json.dump(assessment_body(assessment), sys.stdout, indent=2)
        print()
    else:
        print(render_table(assessment))
    return 0


def render_table(assessment: Assessment) -> str:
    lines = []
    for photo in assessment.photos:
        lines.append(f"{photo.photo_id}  {photo.width}x{photo.height}")
        for issue in photo.quality_issues:
            lines.append(f"  ! {issue.code}: {issue.message}")
        for damage in photo.damages:
            part = damage.part.value if damage.part else "(no visible part)"
            lines.append(
                f"  {damage.damage_type.value:<14} {damage.severity.value:<9} "
                f"{part:<20} conf {damage.confidence:.2f}"
            )
        if not photo.damages:
            lines.append("  no damage found")
    return "\n".join(lines)
