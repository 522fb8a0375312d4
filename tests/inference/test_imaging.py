"""Decoding odd photos, EXIF orientation, letterboxing and its inverse."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from inference.errors import UnreadableImage
from inference.imaging import LETTERBOX_PAD, decode_photo, letterbox, to_tensor


def two_colour(width: int = 60, height: int = 40) -> np.ndarray:
    """Red left half, blue right half (BGR)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = (0, 0, 255)
    image[:, width // 2 :] = (255, 0, 0)
    return image


def test_letterbox_pads_with_grey_and_inverts_boxes():
    # given a landscape photo
    image = two_colour(400, 200)
    # when it is letterboxed to 320
    canvas, box = letterbox(image, 320)
    # then it fits with grey bands above and below
    assert canvas.shape == (320, 320, 3)
    assert box.scale == pytest.approx(0.8)
    assert (box.pad_x, box.pad_y) == (0.0, 80.0)
    assert (canvas[:79] == LETTERBOX_PAD).all() and (canvas[241:] == LETTERBOX_PAD).all()
    assert tuple(canvas[160, 10]) == (0, 0, 255)
    # and model-space boxes map back to photo pixels, clipped to the photo
    model_boxes = np.array([[80, 120, 160, 200], [-20, 0, 400, 400]], np.float32)
    back = box.to_original(model_boxes)
    np.testing.assert_allclose(back[0], [100, 50, 200, 150], atol=1e-4)
    np.testing.assert_allclose(back[1], [0, 0, 400, 200], atol=1e-4)


def test_to_tensor_is_rgb_unit_range_nchw():
    canvas, _ = letterbox(two_colour(64, 64), 64)
    tensor = to_tensor([canvas])
    assert tensor.shape == (1, 3, 64, 64) and tensor.dtype == np.float32
    assert tensor[0, 0, 5, 5] == pytest.approx(1.0)  # red channel first
    assert tensor[0, 2, 5, 5] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("orientation", "top_left_bgr", "shape"),
    [(1, (0, 0, 255), (40, 60)), (6, (0, 0, 255), (60, 40)), (3, (255, 0, 0), (40, 60))],
)
def test_exif_orientation_is_applied(orientation, top_left_bgr, shape):
    # given a JPEG whose stored pixels are red-left/blue-right, with an EXIF orientation
    pil = Image.fromarray(two_colour()[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", exif=exif.tobytes(), quality=95)
    # when decoded
    image = decode_photo(buffer.getvalue())
    # then the photo is upright as the camera meant it
    assert image.shape[:2] == shape
    assert np.abs(image[2, 2].astype(int) - top_left_bgr).max() < 40
    if orientation == 6:  # rotated 90 clockwise: the left half is now on top
        assert np.abs(image[-3, 2].astype(int) - (255, 0, 0)).max() < 40


def test_grayscale_png_becomes_bgr(encode):
    gray = np.full((30, 50), 77, np.uint8)
    image = decode_photo(encode(gray))
    assert image.shape == (30, 50, 3) and image.dtype == np.uint8
    assert (image == 77).all()


def test_sixteen_bit_png_is_scaled_to_eight_bits(encode):
    deep = np.full((30, 50, 3), 40000, np.uint16)
    image = decode_photo(encode(deep))
    assert image.dtype == np.uint8 and (image == 40000 >> 8).all()


def test_transparent_pixels_are_composited_over_white(encode):
    rgba = np.zeros((30, 50, 4), np.uint8)
    rgba[:, :25] = (10, 20, 30, 255)  # opaque left half, transparent black right half
    image = decode_photo(encode(rgba))
    assert image.shape == (30, 50, 3)
    assert tuple(image[5, 5]) == (10, 20, 30)
    assert tuple(image[5, 45]) == (255, 255, 255)


def test_gray_with_alpha_is_handled():
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 20, 2), (90, 255), np.uint8), "LA").save(buffer, "PNG")
    image = decode_photo(buffer.getvalue())
    assert image.shape == (20, 20, 3) and (image == 90).all()


def test_cmyk_jpeg_becomes_bgr():
    buffer = io.BytesIO()
    Image.fromarray(two_colour()[:, :, ::-1]).convert("CMYK").save(buffer, "JPEG", quality=95)
    image = decode_photo(buffer.getvalue())
    assert image.shape == (40, 60, 3)
    assert np.abs(image[20, 5].astype(int) - (0, 0, 255)).max() < 40
    assert np.abs(image[20, 55].astype(int) - (255, 0, 0)).max() < 40


def test_float_tiff_is_scaled(encode):
    image = decode_photo(encode(np.full((16, 16, 3), 0.5, np.float32), ".tiff"))
    assert image.dtype == np.uint8 and abs(int(image[0, 0, 0]) - 128) <= 1


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0garbage"])
def test_undecodable_bytes_raise_a_clear_error(data):
    with pytest.raises(UnreadableImage) as excinfo:
        decode_photo(data)
    assert excinfo.value.code == "unreadable_image" and excinfo.value.message


def test_photo_over_the_pixel_limit_is_refused(encode):
    with pytest.raises(UnreadableImage, match="pixels"):
        decode_photo(encode(np.zeros((100, 100, 3), np.uint8)), max_pixels=5000)


def test_letterbox_of_a_one_pixel_high_photo_does_not_crash():
    canvas, box = letterbox(cv2.cvtColor(np.zeros((1, 300), np.uint8), cv2.COLOR_GRAY2BGR), 64)
    assert canvas.shape == (64, 64, 3) and box.height == 1


@pytest.mark.parametrize("orientation", [1, 6])
def test_large_jpeg_is_decoded_reduced_but_reports_its_true_size(orientation):
    # given a 2600x1300 JPEG (a phone-sized photo), possibly rotated by EXIF
    from inference.imaging import load_photo

    big = cv2.resize(two_colour(), (2600, 1300), interpolation=cv2.INTER_NEAREST)
    pil = Image.fromarray(big[:, :, ::-1])
    exif = pil.getexif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", exif=exif.tobytes())
    # when loaded for analysis
    photo = load_photo(buffer.getvalue(), work_side=1000)
    # then it was decoded at half size, upright, and knows the photo's real size
    expected = (2600, 1300) if orientation == 1 else (1300, 2600)
    assert (photo.width, photo.height) == expected
    assert photo.image.shape[:2] == (expected[1] // 2, expected[0] // 2)
    assert photo.scale == pytest.approx((2.0, 2.0))
    # and the full-size decode still gives every pixel
    assert decode_photo(buffer.getvalue()).shape[:2] == (expected[1], expected[0])
