"""Photo decoding and letterboxing: any photo a phone or scanner produces -> 8-bit BGR.

Decoding keeps the stored pixels (`IMREAD_UNCHANGED`) so that alpha, 16-bit and float
images are converted here on purpose rather than silently by the codec, then applies
the EXIF orientation so that geometry is in the photo as the policyholder saw it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np

from inference.errors import UnreadableImage

LETTERBOX_PAD = 114
"""Ultralytics pads with grey 114; matching it keeps ONNX output equal to training-time."""

EXIF_ORIENTATION_TAG = 0x0112

# EXIF orientation -> operations turning stored pixels upright.
_ORIENT_OPS: dict[int, tuple[int | None, bool]] = {
    # value: (cv2 rotate code or None, flip horizontally first)
    1: (None, False),
    2: (None, True),
    3: (cv2.ROTATE_180, False),
    4: (cv2.ROTATE_180, True),
    5: (cv2.ROTATE_90_CLOCKWISE, True),
    6: (cv2.ROTATE_90_CLOCKWISE, False),
    7: (cv2.ROTATE_90_COUNTERCLOCKWISE, True),
    8: (cv2.ROTATE_90_COUNTERCLOCKWISE, False),
}


@dataclass(frozen=True)
class Letterbox:
    """How a photo was fitted into the model's square input; inverts model coordinates."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    """Original photo width."""
    height: int
    size: int
    """Side of the square model input."""

    def to_original(self, xyxy: np.ndarray) -> np.ndarray:
        """Model-input xyxy boxes (N,4) -> original photo pixels, clipped to the photo."""
        out = np.empty_like(xyxy, dtype=np.float32)
        out[:, [0, 2]] = (xyxy[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (xyxy[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, self.width)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, self.height)
        return out


@dataclass(frozen=True)
class Header:
    """What the file header says, read without decoding the pixels."""

    format: str
    width: int
    """Stored width, before EXIF orientation."""
    height: int
    orientation: int = 1
    jpeg_quality: int | None = None
    """The JPEG encoder's quality setting, estimated from the luminance quantization table
    (`estimated_jpeg_quality`); None for another format or an unreadable table."""

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as the photo is meant to be seen."""
        swapped = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if swapped else (self.width, self.height)


def read_header(data: bytes) -> Header | None:
    """Format, stored size and EXIF orientation; None when PIL cannot identify the bytes."""
    from PIL import Image  # lazy: only the header is parsed

    try:
        with Image.open(io.BytesIO(data)) as img:
            try:
                orientation = int(img.getexif().get(EXIF_ORIENTATION_TAG, 1))
            except Exception:  # a corrupt EXIF block must not hide a readable photo
                orientation = 1
            width, height = img.size
            fmt = img.format or ""
            tables = getattr(img, "quantization", None) if fmt == "JPEG" else None
    except Exception:
        return None
    orientation = orientation if orientation in _ORIENT_OPS else 1
    return Header(fmt, width, height, orientation, estimated_jpeg_quality(tables))


_IJG_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
     69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64,
     81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    np.float64,
)  # fmt: skip
"""The JPEG standard's example luminance table (Annex K), which the IJG library (libjpeg,
and OpenCV and Pillow through it) scales by its quality setting."""


def _ijg_table_sum(quality: int) -> float:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return float(np.clip(np.floor((_IJG_LUMINANCE * scale + 50) / 100), 1, 255).sum())


_IJG_SUMS = {quality: _ijg_table_sum(quality) for quality in range(1, 101)}


def estimated_jpeg_quality(tables: object) -> int | None:
    """The IJG quality (1-100) whose luminance table is nearest `tables[0]` in total step
    size: the encoder's setting for a table scaled from the standard one, and a fair guess
    for a table of the encoder's own. None without a 64-entry luminance table."""
    try:
        luminance = np.asarray(tables[0], np.float64)  # type: ignore[index]
    except Exception:
        return None
    if luminance.shape != (64,):
        return None
    total = float(luminance.sum())
    return min(_IJG_SUMS, key=lambda quality: (abs(_IJG_SUMS[quality] - total), -quality))


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1..8) of encoded photo bytes; 1 when absent or unreadable."""
    header = read_header(data)
    return header.orientation if header else 1


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    rotate, flip = _ORIENT_OPS.get(orientation, (None, False))
    if flip:
        image = cv2.flip(image, 1)
    if rotate is not None:
        image = cv2.rotate(image, rotate)
    return image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any bit depth -> uint8, keeping the full range visible."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype.kind == "f":
        finite = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        # float images are 0..1 by convention; larger maxima mean an HDR-style range
        top = max(1.0, float(finite.max())) if finite.size else 1.0
        return (finite.clip(0, top) / top * 255.0 + 0.5).astype(np.uint8)
    info = np.iinfo(image.dtype)
    scaled = (image.astype(np.float64) - info.min) / (info.max - info.min) * 255.0
    return scaled.astype(np.uint8)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Gray, gray+alpha, BGR, BGRA -> 3-channel BGR (alpha composited over white)."""
    image = to_uint8(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:
        gray = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
        return _composite(gray, image[:, :, 1])
    if channels == 3:
        return image
    if channels == 4:
        return _composite(image[:, :, :3], image[:, :, 3])
    raise UnreadableImage(f"unsupported channel count {channels}")


def _composite(bgr: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    # Transparent pixels often hold black; white matches how viewers show the photo.
    a = alpha.astype(np.float32)[:, :, None] / 255.0
    return (bgr.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class DecodedPhoto:
    """An upright BGR image, possibly decoded at reduced size, and the photo's true size."""

    image: np.ndarray
    width: int
    """Upright width of the photo as stored (all geometry is reported in these pixels)."""
    height: int
    jpeg_quality: int | None = None
    """The encoder's estimated quality setting (`Header.jpeg_quality`)."""

    @property
    def scale(self) -> tuple[float, float]:
        """Photo pixels per decoded-image pixel, along x and y."""
        return self.width / self.image.shape[1], self.height / self.image.shape[0]


_REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _reduction(header: Header | None, work_side: int | None) -> int:
    """JPEG can be decoded at 1/2, 1/4, 1/8 size for a fraction of the cost: a 12 MP
    phone photo needs no more than `work_side` pixels for models that see 640."""
    if header is None or work_side is None or header.format != "JPEG":
        return 1
    longest = max(header.width, header.height)
    for factor in (8, 4, 2):
        if longest // factor >= work_side:
            return factor
    return 1


def load_photo(
    data: bytes, max_pixels: int = 50_000_000, work_side: int | None = 1280
) -> DecodedPhoto:
    """Encoded bytes -> `DecodedPhoto`; UnreadableImage with a reason otherwise.

    The pixel limit is checked on the header, before any pixel is decoded.
    """
    if not data:
        raise UnreadableImage("the photo is empty (0 bytes)")
    header = read_header(data)
    if header and header.width * header.height > max_pixels:
        raise UnreadableImage(f"the photo has more than {max_pixels} pixels")
    factor = _reduction(header, work_side)
    buffer = np.frombuffer(data, dtype=np.uint8)
    if factor > 1:
        image = cv2.imdecode(buffer, _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION)
    else:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None:
        image = _decode_with_pil(data)
        factor = 1
    if image.size == 0:
        raise UnreadableImage("the photo has no pixels")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise UnreadableImage(f"the photo has more than {max_pixels} pixels")
    bgr = apply_orientation(to_bgr(image), header.orientation if header else 1)
    if factor > 1 and header is not None:
        width, height = header.upright_size
    else:
        height, width = bgr.shape[:2]
    return DecodedPhoto(bgr, width, height, header.jpeg_quality if header else None)


def decode_photo(data: bytes, max_pixels: int = 50_000_000) -> np.ndarray:
    """Encoded bytes -> upright 8-bit BGR image at full size."""
    return load_photo(data, max_pixels, work_side=None).image


def _decode_with_pil(data: bytes) -> np.ndarray:
    """Fallback for formats OpenCV does not decode (e.g. CMYK TIFF, some palettes)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = "RGBA" if "A" in img.getbands() else "RGB"
            rgb = np.asarray(img.convert(mode))
    except Exception as exc:
        raise UnreadableImage(f"the photo cannot be decoded: {type(exc).__name__}") from exc
    code = cv2.COLOR_RGBA2BGRA if rgb.shape[-1] == 4 else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(rgb, code)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit a BGR image into a size x size canvas keeping aspect ratio (Ultralytics-style)."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    if (new_w, new_h) != (width, height):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    bottom, right = size - new_h - top, size - new_w - left
    canvas = cv2.copyMakeBorder(
        image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(LETTERBOX_PAD,) * 3
    )
    return canvas, Letterbox(scale, float(left), float(top), width, height, size)


def to_tensor(canvases: list[np.ndarray]) -> np.ndarray:
    """BGR uint8 canvases -> [B,3,H,W] float32 RGB 0..1, the exported models' input."""
    batch = np.stack(canvases)[..., ::-1].transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch, dtype=np.float32) * np.float32(1.0 / 255.0)
