"""Each quality check fires on the bad photo and stays quiet on a good one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference import quality
from inference.quality import QualityConfig, hamming, perceptual_hash

from .conftest import textured

CFG = QualityConfig()


def gray(image: np.ndarray) -> np.ndarray:
    return quality.analysis_gray(image, CFG.analysis_side)


def codes(issues) -> list[str]:
    return [i.code for i in issues]


def test_blur_fires_on_a_blurred_photo_only():
    sharp = textured(640, 480)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 6)
    assert codes(quality.check_blur(gray(sharp), CFG)) == []
    (issue,) = quality.check_blur(gray(blurred), CFG)
    assert issue.code == quality.BLURRY and not issue.blocking and issue.retake_hint


def test_exposure_checks():
    good = textured(320, 240)
    dark = (good * 0.15).astype(np.uint8)
    bright = np.clip(good.astype(int) + 150, 0, 255).astype(np.uint8)
    assert quality.check_exposure(gray(good), CFG) == []
    (under,) = quality.check_exposure(gray(dark), CFG)
    assert under.code == quality.UNDEREXPOSED and not under.blocking
    (over,) = quality.check_exposure(gray(bright), CFG)
    assert over.code == quality.OVEREXPOSED and not over.blocking


@pytest.mark.parametrize(("value", "code"), [(0, quality.UNDEREXPOSED), (255, quality.OVEREXPOSED)])
def test_a_flat_black_or_white_photo_is_blocking(value, code):
    (issue,) = quality.check_exposure(gray(np.full((100, 100, 3), value, np.uint8)), CFG)
    assert issue.code == code and issue.blocking


def test_compression_fires_under_the_configured_jpeg_quality_only():
    assert quality.check_compression(None, CFG) == []  # not a JPEG
    assert quality.check_compression(CFG.min_jpeg_quality, CFG) == []
    (issue,) = quality.check_compression(30, CFG)
    assert issue.code == quality.COMPRESSED and not issue.blocking
    assert "quality about 30" in issue.message and "original" in issue.retake_hint


@pytest.mark.parametrize("saved_at", [20, 30, 49, 50, 75, 92])
def test_a_jpegs_quality_setting_is_read_from_its_header(saved_at: int) -> None:
    from inference.imaging import load_photo, read_header

    ok, data = cv2.imencode(".jpg", textured(320, 240), [cv2.IMWRITE_JPEG_QUALITY, saved_at])
    assert ok
    header = read_header(data.tobytes())
    assert header is not None and header.jpeg_quality == saved_at
    assert load_photo(data.tobytes()).jpeg_quality == saved_at


def test_a_photo_that_is_no_jpeg_has_no_jpeg_quality() -> None:
    from inference.imaging import estimated_jpeg_quality, read_header

    ok, data = cv2.imencode(".png", textured(64, 48))
    assert ok
    header = read_header(data.tobytes())
    assert header is not None and header.jpeg_quality is None
    assert estimated_jpeg_quality(None) is None and estimated_jpeg_quality({0: [1, 2]}) is None


def test_too_small():
    assert quality.check_size(64, 64, CFG) == []
    (issue,) = quality.check_size(300, 1, CFG)
    assert issue.code == quality.TOO_SMALL and issue.blocking and "300x1" in issue.message


def test_vehicle_check():
    assert quality.check_vehicle(2, 0) == []
    assert codes(quality.check_vehicle(0, 0)) == [quality.NO_VEHICLE]
    assert codes(quality.check_vehicle(0, 1)) == [quality.NO_PART_VISIBLE]


def test_a_close_up_with_a_faintly_recognised_part_is_not_refused():
    # given no part above the reporting threshold and no damage, but a part half-recognised
    faint = quality.check_vehicle(0, 0, part_evidence=0.08)
    # then the photo shows a vehicle: flagged for the adjuster, not refused
    assert codes(faint) == [quality.NO_PART_VISIBLE] and not faint[0].blocking
    assert "vehicle is visible" in faint[0].message
    # and a score under the evidence level is still no vehicle
    assert codes(quality.check_vehicle(0, 0, part_evidence=0.01)) == [quality.NO_VEHICLE]


def test_perceptual_hash_survives_reencoding_and_resizing():
    image = textured(640, 480, 3)
    ok, jpeg = cv2.imencode(".jpg", cv2.resize(image, (320, 240)), [cv2.IMWRITE_JPEG_QUALITY, 70])
    assert ok
    again = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    assert again is not None
    h1, h2 = perceptual_hash(image), perceptual_hash(again)
    assert len(h1) == 16 and int(h1, 16) >= 0
    assert hamming(h1, h2) <= CFG.duplicate_max_bits
    assert hamming(h1, perceptual_hash(textured(640, 480, 4))) > 16
    assert perceptual_hash(gray(image)) == perceptual_hash(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))


def test_duplicates_point_at_the_first_photo():
    a, b = perceptual_hash(textured(200, 200, 1)), perceptual_hash(textured(200, 200, 2))
    found = quality.duplicate_issues(["x", "y", "z", "w"], [a, b, a, None], CFG)
    assert list(found) == [2] and "x" in found[2].message and found[2].blocking


def test_real_test_photos_mostly_pass_blur_and_exposure(data_root):
    files = sorted((data_root / "damage-severity/images/test").glob("*.jpg"))[:20]
    if not files:
        pytest.skip("damage-severity test photos not available")
    flagged = 0
    for f in files:
        image = cv2.imread(str(f))
        assert image is not None
        g = gray(image)
        flagged += bool(quality.check_blur(g, CFG) or quality.check_exposure(g, CFG))
    assert flagged <= len(files) // 4
