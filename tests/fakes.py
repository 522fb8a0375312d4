"""Fake analyzers behind the `PhotoAnalyzer` seam, selected with CDAT_ANALYZER.

They look at the real photo bytes (size, brightness) so different photos give
different, predictable findings, without any model.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Sequence
from dataclasses import replace

from PIL import Image

from cdat.analysis import PhotoInput
from cdat.errors import ModelUnavailable
from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType, Severity


class FakeAnalyzer:
    """Finds one dent on the front bumper of every photo; brighter photos look more severe."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    @property
    def model_versions(self) -> dict[str, str]:
        return {"damage": "fake-damage-1", "parts": "fake-parts-1"}

    def analyze(self, photos: Sequence[PhotoInput]) -> list[PhotoAnalysis]:
        return [self._one(photo) for photo in photos]

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        time.sleep(self.delay_s)
        with Image.open(io.BytesIO(photo.data)) as image:
            width, height = image.size
            # tobytes: one byte per pixel in "L" mode (Pillow deprecates getdata)
            brightness = sum(image.convert("L").resize((8, 8)).tobytes()) / 64
        severity = Severity.SEVERE if brightness > 170 else Severity.MINOR
        part_box = Box(0, height * 0.5, width, height)
        damage = DamageInstance(
            DamageType.DENT,
            severity,
            0.9,
            Box(width * 0.2, height * 0.6, width * 0.4, height * 0.8),
            part=CarPart.FRONT_BUMPER,
            part_coverage=0.08,
        )
        return PhotoAnalysis(
            photo_id=photo.photo_id,
            width=width,
            height=height,
            damages=(damage,),
            parts=(PartInstance(CarPart.FRONT_BUMPER, 0.95, part_box),),
            perceptual_hash=f"{int(brightness):016x}",
        )


class JitteryFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but each photo takes anywhere up to `most_s` seconds, so under a
    short lease some runs outlive their lease and race the run that took it over."""

    def __init__(self, most_s: float) -> None:
        super().__init__()
        self.most_s = most_s

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        time.sleep(random.uniform(0, self.most_s))
        return super()._one(photo)


class MismatchedFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but the dent is called a broken lamp and put on the hood: a type
    that cannot be on its part."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        seen = super()._one(photo)
        damages = tuple(
            replace(d, damage_type=DamageType.LAMP_BROKEN, part=CarPart.HOOD) for d in seen.damages
        )
        parts = tuple(replace(p, part=CarPart.HOOD) for p in seen.parts)
        return replace(seen, damages=damages, parts=parts)


class CloseUpFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but every photo's severity was read by a close-up stage."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        return replace(super()._one(photo), severity_read_close_up=True)


class CloseUpsOfTwoPartsFakeAnalyzer(CloseUpFakeAnalyzer):
    """As `CloseUpFakeAnalyzer`, but a dark photo's dent is on the hood: a claim of a dark and
    a bright photo has two findings whose severity an adjuster confirms."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        seen = super()._one(photo)
        if seen.damages[0].severity is Severity.SEVERE:  # bright
            return seen
        on_hood = replace(seen.damages[0], part=CarPart.HOOD)
        parts = (replace(seen.parts[0], part=CarPart.HOOD),)
        return replace(seen, damages=(on_hood,), parts=parts)


class OutlinedAgainFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but the dent is outlined twice: once, and again smaller and less
    sure inside it (as looks taken where damage is found outline one damage); and named
    again, as a still less sure scratch inside it."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        seen = super()._one(photo)
        dent = seen.damages[0]
        b = dent.box
        outer = ((b.x1, b.y1), (b.x2, b.y1), (b.x2, b.y2), (b.x1, b.y2))
        w, h = b.x2 - b.x1, b.y2 - b.y1
        inner_box = Box(b.x1 + w / 4, b.y1 + h / 4, b.x2 - w / 4, b.y2 - h / 4)
        i = inner_box
        inner = ((i.x1, i.y1), (i.x2, i.y1), (i.x2, i.y2), (i.x1, i.y2))
        again = replace(dent, confidence=0.5, box=inner_box, polygon=inner)
        named = replace(again, damage_type=DamageType.SCRATCH, confidence=0.4)
        return replace(seen, damages=(replace(dent, polygon=outer), again, named))


class CalibratedFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but the dent is scored 0.05, which its model's curves read as a
    0.85 chance of damage (as they read most of a served model's low scores)."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        seen = super()._one(photo)
        return replace(seen, damages=(replace(seen.damages[0], confidence=0.05, chance=0.85),))


class WholeCarFakeAnalyzer(FakeAnalyzer):
    """As `FakeAnalyzer`, but every photo is one the gate reads as the whole car, and no
    damage is found on it (as small damage on a whole car mostly is not)."""

    def _one(self, photo: PhotoInput) -> PhotoAnalysis:
        seen = super()._one(photo)
        return replace(seen, damages=(), whole_car_view_probability=0.9)


def build_whole_car_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return WholeCarFakeAnalyzer()


def build_calibrated_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return CalibratedFakeAnalyzer()


def build_outlined_again_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return OutlinedAgainFakeAnalyzer()


def build_mismatched_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return MismatchedFakeAnalyzer()


def build_close_up_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return CloseUpFakeAnalyzer()


def build_close_ups_of_two_parts_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return CloseUpsOfTwoPartsFakeAnalyzer()


def build_jittery_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return JitteryFakeAnalyzer(most_s=0.4)


def build_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return FakeAnalyzer()


def build_slow_fake_analyzer(settings: Settings) -> FakeAnalyzer:
    return FakeAnalyzer(delay_s=3.0)


def build_missing_analyzer(settings: Settings) -> FakeAnalyzer:
    raise ModelUnavailable("no damage model is promoted in the test model directory")
