"""Overlays decode, keep the photo's size and show the damage in its colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cdat.findings import Box, DamageInstance, PartInstance, PhotoAnalysis, QualityIssue
from cdat.taxonomy import CarPart, DamageType, Severity
from inference.errors import UnreadableImage
from inference.overlay import DAMAGE_COLOURS, render_overlay


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def analysis(width, height) -> PhotoAnalysis:
    square = ((100.0, 60.0), (200.0, 60.0), (200.0, 160.0), (100.0, 160.0))
    return PhotoAnalysis(
        "p",
        width,
        height,
        damages=(
            DamageInstance(
                DamageType.DENT,
                Severity.SEVERE,
                0.9,
                Box(100, 60, 200, 160),
                square,
                CarPart.HOOD,
                0.2,
            ),
        ),
        parts=(
            PartInstance(
                CarPart.HOOD,
                0.8,
                Box(50, 20, 300, 220),
                ((50.0, 20.0), (300.0, 20.0), (300.0, 220.0)),
            ),
        ),
        quality_issues=(QualityIssue("blurry", "The photo is blurred.", "Hold still"),),
    )


@pytest.mark.parametrize("audience", ["adjuster", "policyholder"])
def test_overlay_is_a_jpeg_of_the_photo_size_with_the_damage_tinted(audience):
    grey = np.full((240, 320, 3), 128, np.uint8)
    _ok, png = cv2.imencode(".png", grey)
    out = render_overlay(png.tobytes(), analysis(320, 240), audience=audience)
    image = decoded(out)
    assert out[:2] == b"\xff\xd8" and image.shape == (240, 320, 3)
    inside = image[100:120, 140:160].reshape(-1, 3).mean(0)
    expected = 0.4 * np.array(DAMAGE_COLOURS[DamageType.DENT]) + 0.6 * 128
    assert np.abs(inside - expected).max() < 12
    assert np.abs(image[230, 10].astype(int) - 128).max() < 12  # untouched corner


def test_overlay_can_be_downscaled():
    _ok, png = cv2.imencode(".png", np.full((240, 320, 3), 128, np.uint8))
    out = render_overlay(png.tobytes(), analysis(320, 240), max_side=160)
    assert decoded(out).shape == (120, 160, 3)


def test_overlay_of_undecodable_bytes_is_a_clear_error():
    with pytest.raises(UnreadableImage):
        render_overlay(b"nope", analysis(320, 240))


def _dark_rows_left_of_labels(damages: tuple[DamageInstance, ...]) -> int:
    grey = np.full((300, 400, 3), 128, np.uint8)
    _ok, png = cv2.imencode(".png", grey)
    out = render_overlay(png.tobytes(), PhotoAnalysis("p", 400, 300, damages=damages))
    # the column just left of the text runs through the labels' dark backgrounds only
    return int(np.count_nonzero(decoded(out)[:, 99].astype(int).sum(axis=1) < 60))


def test_labels_of_damages_sharing_a_corner_are_written_apart() -> None:
    # given two damages found with the same box
    box = Box(100, 100, 220, 200)
    dent, scratch = (
        DamageInstance(kind, Severity.MINOR, 0.9, box, (), CarPart.HOOD, 0.1)
        for kind in (DamageType.DENT, DamageType.SCRATCH)
    )
    # when the overlay is rendered, then their labels take two lines, not one
    one = _dark_rows_left_of_labels((dent,))
    assert _dark_rows_left_of_labels((dent, scratch)) >= 2 * one - 2


def test_a_damage_named_again_inside_a_surer_one_is_left_off_the_overlay():
    # given a severe dent and, inside it, a less sure scratch: the dent named again
    dent = analysis(320, 240).damages[0]
    inner = ((130.0, 90.0), (170.0, 90.0), (170.0, 130.0), (130.0, 130.0))
    scratch = DamageInstance(
        DamageType.SCRATCH, Severity.MINOR, 0.4, Box(130, 90, 170, 130), inner, CarPart.HOOD, 0.05
    )
    seen = PhotoAnalysis("p", 320, 240, damages=(dent, scratch))
    _ok, png = cv2.imencode(".png", np.full((240, 320, 3), 128, np.uint8))
    # when the photo is drawn
    image = decoded(render_overlay(png.tobytes(), seen))
    # then inside the scratch the photo is tinted as the dent alone, with no box of its own
    expected = 0.4 * np.array(DAMAGE_COLOURS[DamageType.DENT]) + 0.6 * 128
    assert np.abs(image[100:120, 140:160].reshape(-1, 3).mean(0) - expected).max() < 12
    assert np.abs(image[110, 130].astype(int) - expected).max() < 20


def test_an_adjuster_s_label_says_how_sure_the_damage_is_as_the_workspace_does():
    from dataclasses import replace

    from inference.overlay import damage_label

    # given the dent scored 0.9, and the same dent scored 0.05 and read by curves at 0.85
    dent = analysis(320, 240).damages[0]
    read = replace(dent, confidence=0.05, chance=0.85)
    # then the adjuster reads its score where no curves read it, else its chance
    assert damage_label(dent, "adjuster") == "severe dent 90%, hood"
    assert damage_label(read, "adjuster") == "severe dent 85%, hood"
    # and the policyholder reads neither
    assert damage_label(read, "policyholder") == "severe dent, hood"
