"""Tiny images made by the tests themselves."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def jpeg(
    width: int = 160,
    height: int = 120,
    color: tuple[int, int, int] = (90, 120, 200),
    exif: dict[int, object] | None = None,
    gps: dict[int, object] | None = None,
) -> bytes:
    image = Image.new("RGB", (width, height), color)
    buffer = io.BytesIO()
    info = Image.Exif()
    for tag, value in (exif or {}).items():
        info[tag] = value
    if gps:
        info.get_ifd(0x8825).update(gps)
    image.save(buffer, "JPEG", exif=info.tobytes() if (exif or gps) else b"")
    return buffer.getvalue()


def png(width: int = 100, height: int = 100, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming huge dimensions, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
