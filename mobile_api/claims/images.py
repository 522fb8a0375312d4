"""Upload validation: what a photo is, how big it claims to be, and whether it decodes.

The pixel limit is checked from the header before anything is decoded, so a
decompression bomb costs a few bytes of parsing, not gigabytes of memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import io
import struct
import sys
import threading
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from mobile_api.claims.privacy import png_chunks, strip_location
from mobile_api.claims.text import CONTROL_CHARS
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
    width, height = _header_size(data, filename, kind, max_pixels)
    if min(width, height) < min_side:
        raise ImageTooSmall(
            f"{filename}: {width}x{height} is too small; photos need at least {min_side} px a side",
            field="files",
        )
    try:
        exif = _check_decodes(data, kind, width, height)
    except Exception as exc:
        message = f"{filename}: the image is truncated or corrupt ({exc})"
        raise InvalidImage(message, field="files") from exc
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
        exif=exif_fields(exif),
        filename=filename[:255],
        public_data=None if public is data else public,
    )


_PARSERS: dict[str, type[ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.JpegImageFile,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}
_BAD_HEADER = (OSError, ValueError, SyntaxError, IndexError, TypeError, struct.error)


def opened(data: bytes, kind: str) -> ImageFile.ImageFile:
    """The photo opened by the parser of its sniffed format alone. Never through
    `Image.open`, which probes every format and which a library may patch: Ultralytics,
    once imported, answers an unidentified file by reaching for a HEIC plugin (installed
    at run time where it is online) and raises its own error where it has none."""
    return _PARSERS[kind](io.BytesIO(data))


def _header_size(data: bytes, filename: str, kind: str, max_pixels: int) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with opened(data, kind) as image:  # parses the header only
                width, height = image.size
    except _BAD_HEADER as exc:
        message = f"{filename}: cannot read the image header ({exc})"
        raise InvalidImage(message, field="files") from exc
    except Image.DecompressionBombError as exc:  # a parser that checks its canvas itself
        raise ImageTooLarge(f"{filename}: {exc}", field="files") from exc
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{filename}: {width}x{height} is over the {max_pixels}-pixel limit", field="files"
        )
    return width, height


def _check_decodes(data: bytes, kind: str, width: int, height: int) -> Image.Exif:
    """Prove the pixel data is whole (truncated or corrupt data fails here, not in a worker
    later) at a bounded cost, and return the EXIF:

    * JPEG: decoded at 1/8 scale (every coefficient is still read, the bitmap is 1/64);
    * PNG: the compressed rows inflated a piece at a time and checked, never held whole;
    * WebP: decoded in full, one large photo at a time per process, the memory handed back.
    """
    if kind == "PNG":
        verify_png_rows(data)
        return png_exif(data)
    with opened(data, kind) as image:
        exif = image.getexif()
        if kind == "JPEG":
            image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
            return exif
        if width * height <= _SMALL_DECODE:
            image.load()
            return exif
        with _one_large_decode:
            try:
                image.load()
            finally:
                image.close()
                give_back_memory()
    return exif


_SMALL_DECODE = 4_000_000
"""Pixels a WebP may have and be decoded beside others; larger ones wait their turn."""
_one_large_decode = threading.Lock()
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_INFLATE_PIECE = 1 << 20


def verify_png_rows(data: bytes) -> None:
    """The PNG's compressed image data inflates to every row it declares, each starting with
    a known filter type; at most a MiB of it held at a time."""
    chunks = list(png_chunks(data))
    for kind, _, start, end in chunks:
        # libpng (OpenCV's decoder, which serves) refuses a critical chunk that fails its CRC
        # and skips an ancillary one (bit 5 of its first letter set)
        critical = not kind[0] & 0x20
        if critical and zlib.crc32(data[start + 4 : end - 4]) != _crc_of(data, end):
            raise ValueError(f"PNG: chunk {kind.decode('latin-1')} fails its CRC check")
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise ValueError("PNG: no IHDR chunk first")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if colour not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[colour] or interlace > 1:
        raise ValueError(f"PNG: unknown colour type {colour} at depth {depth}")
    bits = _PNG_CHANNELS[colour] * depth
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    rows: list[int] = []  # bytes per row, filter byte included, in stream order
    for x0, y0, dx, dy in passes:
        pass_width = (width - x0 + dx - 1) // dx if width > x0 else 0
        pass_height = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pass_width and pass_height:
            rows.append((pass_width * bits + 7) // 8 + 1)
            rows.append(pass_height)
    inflater = zlib.decompressobj()
    pending = b""
    row_index, rows_left_in_pass, row_bytes = 0, 0, 0
    plan = iter(rows)

    def consume(piece: bytes) -> None:
        nonlocal pending, row_index, rows_left_in_pass, row_bytes
        pending += piece
        while True:
            if rows_left_in_pass == 0:
                try:
                    row_bytes, rows_left_in_pass = next(plan), next(plan)
                except StopIteration:
                    pending = b""
                    return
            if len(pending) < row_bytes:
                return
            whole = min(len(pending) // row_bytes, rows_left_in_pass)
            filters = pending[: whole * row_bytes : row_bytes]
            if max(filters) > 4:
                raise ValueError(
                    f"PNG: unknown filter type in row {row_index + filters.index(max(filters))}"
                )
            pending = pending[whole * row_bytes :]
            row_index += whole
            rows_left_in_pass -= whole

    for kind, payload, _, _ in chunks:
        if kind != b"IDAT":
            continue
        piece = inflater.decompress(payload, _INFLATE_PIECE)
        consume(piece)
        while inflater.unconsumed_tail:
            consume(inflater.decompress(inflater.unconsumed_tail, _INFLATE_PIECE))
    consume(inflater.flush())
    if rows_left_in_pass or next(plan, None) is not None:
        raise ValueError(f"PNG: the image data ends after {row_index} rows")


def _crc_of(data: bytes, chunk_end: int) -> int:
    return int(struct.unpack(">I", data[chunk_end - 4 : chunk_end])[0])


def png_exif(data: bytes) -> Image.Exif:
    """The PNG's eXIf chunk, read without decoding the image (Pillow decodes it all to find
    one that follows the image data)."""
    exif = Image.Exif()
    for kind, payload, _, _ in png_chunks(data):
        if kind == b"eXIf":
            exif.load(payload[6:] if payload.startswith(b"Exif\x00\x00") else payload)
            break
    return exif


def give_back_memory() -> None:
    """Hand freed heap back to the system after a large decode (glibc keeps it otherwise)."""
    if _libc is not None:
        _libc.malloc_trim(0)


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_libc = _load_libc() if sys.platform.startswith("linux") else None


def extract_exif(image: Image.Image) -> dict[str, Any]:
    """The EXIF fields the assessment uses, as JSON-safe values."""
    try:
        exif = image.getexif()
    except Exception:
        return {}
    return exif_fields(exif)


def exif_fields(exif: Image.Exif) -> dict[str, Any]:
    """The EXIF fields the assessment uses, as JSON-safe values."""
    result: dict[str, Any] = {}
    try:
        base = {ExifTags.TAGS.get(tag, str(tag)): value for tag, value in exif.items()}
    except Exception:
        return {}
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
