"""Upload validation: what a photo is, how big it claims to be, and whether it decodes.

The pixel limit is checked from the header before anything is decoded, so a
decompression bomb costs a few bytes of parsing, not gigabytes of memory.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from mobile_api.api.schemas import CONTROL_CHARS
from mobile_api.claims.privacy import strip_location
from mobile_api.errors import (
    ImageTooLarge,
    ImageTooSmall,
    InvalidImage,
    PayloadTooLarge,
    UnsupportedMediaType,
)

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    sha256: str
    content_type: str
    width: int
    height: int
    exif: dict[str, Any]
    filename: str
    public_data: bytes | None = None
    """The copy policyholders are served (GPS removed), made once here; None: same bytes."""

    @property
    def public_sha256(self) -> str:
        if self.public_data is None:
            return self.sha256
        return hashlib.sha256(self.public_data).hexdigest()


def sniff_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_photo(
    data: bytes, filename: str, *, max_bytes: int, max_pixels: int, min_side: int
) -> CheckedPhoto:
    if not CONTROL_CHARS.isdisjoint(filename):
        raise InvalidImage(
            f"{filename!r}: a file name must not contain control characters such as NUL",
            field="files",
        )
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{filename}: {len(data)} bytes is over the {max_bytes}-byte limit per photo",
            field="files",
        )
    kind = sniff_format(data)
    if kind is None:
        raise UnsupportedMediaType(
            f"{filename}: not a JPEG, PNG or WebP photo "
            "(for HEIC, set the camera to 'most compatible')",
            field="files",
        )
    with warnings.catch_warnings():
        # Broken EXIF tags warn once each (thousands in a hostile file); the header and
        # decode checks below are what decide, so the warnings are only noise.
        warnings.simplefilter("ignore", UserWarning)
        return _checked(data, filename, kind, max_pixels, min_side)


def _checked(data: bytes, filename: str, kind: str, max_pixels: int, min_side: int) -> CheckedPhoto:
    width, height = _header_size(data, filename, max_pixels)
    if min(width, height) < min_side:
        raise ImageTooSmall(
            f"{filename}: {width}x{height} is too small; photos need at least {min_side} px a side",
            field="files",
        )
    image = _decode_fully(data, filename)
    try:
        public = strip_location(data)
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        # Never serve a location we could not remove: refuse the photo instead.
        raise InvalidImage(
            f"{filename}: its location data cannot be removed ({exc}); retake or export it",
            field="files",
        ) from exc
    return CheckedPhoto(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=FORMATS[kind],
        width=width,
        height=height,
        exif=extract_exif(image),
        filename=filename[:255],
        public_data=None if public is data else public,
    )


def _header_size(data: bytes, filename: str, max_pixels: int) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # parses the header only
                width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        message = f"{filename}: cannot read the image header ({exc})"
        raise InvalidImage(message, field="files") from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{filename}: {exc}", field="files") from exc
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{filename}: {width}x{height} is over the {max_pixels}-pixel limit", field="files"
        )
    return width, height


def _decode_fully(data: bytes, filename: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()  # truncated or corrupt data fails here, not in a worker later
    except Exception as exc:
        message = f"{filename}: the image is truncated or corrupt ({exc})"
        raise InvalidImage(message, field="files") from exc
    return image


def extract_exif(image: Image.Image) -> dict[str, Any]:
    """The EXIF fields the assessment uses, as JSON-safe values."""
    try:
        exif = image.getexif()
    except Exception:
        return {}
    result: dict[str, Any] = {}
    base = {ExifTags.TAGS.get(tag, str(tag)): value for tag, value in exif.items()}
    detail = _safe_ifd(exif, ExifTags.IFD.Exif)
    for name in ("Make", "Model", "Orientation", "Software", "DateTime"):
        if name in base:
            result[name] = _json_safe(base[name])
    if "DateTimeOriginal" in detail:
        result["DateTimeOriginal"] = _json_safe(detail["DateTimeOriginal"])
    gps = _safe_ifd(exif, ExifTags.IFD.GPSInfo)
    location = _gps_to_degrees(gps)
    if location is not None:
        result["GPSLatitude"], result["GPSLongitude"] = location
    return result


def _safe_ifd(exif: Image.Exif, ifd: int) -> dict[str, Any]:
    try:
        raw = exif.get_ifd(ifd)
    except Exception:
        return {}
    names = ExifTags.GPSTAGS if ifd == ExifTags.IFD.GPSInfo else ExifTags.TAGS
    return {names.get(tag, str(tag)): value for tag, value in raw.items()}


def _gps_to_degrees(gps: dict[str, Any]) -> tuple[float, float] | None:
    try:
        lat = _dms(gps["GPSLatitude"]) * (-1 if gps.get("GPSLatitudeRef") == "S" else 1)
        lon = _dms(gps["GPSLongitude"]) * (-1 if gps.get("GPSLongitudeRef") == "W" else 1)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 6), round(lon, 6)


def _dms(value: Any) -> float:
    degrees, minutes, seconds = (float(part) for part in value)
    return degrees + minutes / 60 + seconds / 3600


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00")[:200]
    if isinstance(value, int | float | str):
        return value.strip("\x00")[:200] if isinstance(value, str) else value
    return str(value)[:200]


def exif_capture_time(exif: dict[str, Any]) -> datetime | None:
    raw = exif.get("DateTimeOriginal") or exif.get("DateTime")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
