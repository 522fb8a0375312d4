"""Hostile upload files, built by the tests themselves: truncated and corrupted images,
polyglots, EXIF bombs, absurd dimensions, SVG, archives, HEIC, empty files.

Each case names the answers the API may give. `ACCEPT` means the photo must be taken
and then assessed without a worker crash; the others must be refused with that status
and without any stored data changing.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from tests import images

ACCEPT = frozenset({201})
REJECT_TYPE = frozenset({415})
REJECT_IMAGE = frozenset({422})
REJECT_SIZE = frozenset({413})
HANDLED = frozenset({201, 415, 422})  # either is fine; the point is no 5xx and no half-state
BAD_IMAGE = frozenset({415, 422})  # not a photo, or a broken one


@dataclass(frozen=True)
class HostileFile:
    name: str
    data: bytes
    allowed: frozenset[int]


def webp(width: int = 160, height: int = 120, lossless: bool = False) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 90)).save(buffer, "WEBP", lossless=lossless)
    return buffer.getvalue()


def noisy_jpeg(width: int = 160, height: int = 120, progressive: bool = False) -> bytes:
    """Real entropy-coded data (a flat colour compresses to almost nothing to corrupt)."""
    image = Image.effect_noise((width, height), 60).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, progressive=progressive)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# --- EXIF bombs: hand-built TIFF structures in a JPEG APP1 segment -------------------------


def _ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
    """A little-endian IFD; each entry is (tag, type, count, 4-byte value-or-offset)."""
    body = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00")[:4]
    return body + struct.pack("<I", next_ifd)


def _tiff(ifd0: bytes, tail: bytes = b"") -> bytes:
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + tail


def _with_app1(jpeg: bytes, payloads: list[bytes]) -> bytes:
    segments = b""
    for payload in payloads:
        body = b"Exif\x00\x00" + payload
        segments += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return jpeg[:2] + segments + jpeg[2:]


def exif_self_loop() -> bytes:
    """IFD0's next-IFD pointer points back at IFD0: a naive reader never stops."""
    return _tiff(_ifd([(0x010F, 2, 4, b"Cam\x00")], next_ifd=8))


def exif_recursive_subifd() -> bytes:
    """The Exif and GPS sub-IFD pointers point back at IFD0, which points at them again."""
    entries = [(0x8769, 4, 1, struct.pack("<I", 8)), (0x8825, 4, 1, struct.pack("<I", 8))]
    return _tiff(_ifd(entries, next_ifd=0))


def exif_huge_counts() -> bytes:
    """Entries claiming billions of values at offsets far past the end of the segment."""
    entries = [
        (0x010F, 2, 0xFFFFFFFF, struct.pack("<I", 0x7FFFFFF0)),
        (0x0110, 2, 0x7FFFFFFF, struct.pack("<I", 26)),
        (0x8825, 4, 1, struct.pack("<I", 0xFFFFFFF0)),
    ]
    return _tiff(_ifd(entries, next_ifd=0xFFFFFFFF))


def exif_many_entries(count: int = 5400) -> bytes:
    """An IFD as large as one APP1 segment allows, every entry an out-of-line string."""
    entries = [(0x9000 + (i % 0x6000), 7, 64, struct.pack("<I", 8)) for i in range(count)]
    return _tiff(_ifd(entries, next_ifd=0))[:65000]


def exif_bad_gps() -> bytes:
    """GPS rationals with zero denominators and an out-of-range latitude reference."""
    gps_offset = 8 + 2 + 12 + 4
    rationals_offset = gps_offset + 2 + 3 * 12 + 4
    gps = _ifd(
        [
            (1, 2, 2, b"Q\x00"),
            (2, 5, 3, struct.pack("<I", rationals_offset)),
            (4, 5, 3, struct.pack("<I", rationals_offset)),
        ],
        next_ifd=0,
    )
    rationals = struct.pack("<6I", 1, 0, 0xFFFFFFFF, 0, 7, 0)
    return _tiff(_ifd([(0x8825, 4, 1, struct.pack("<I", gps_offset))], 0), gps + rationals)


def exif_bombs() -> list[HostileFile]:
    base = images.jpeg()
    bombs = {
        "self-loop": [exif_self_loop()],
        "recursive-subifd": [exif_recursive_subifd()],
        "huge-counts": [exif_huge_counts()],
        "many-entries": [exif_many_entries()],
        "bad-gps": [exif_bad_gps()],
        "64-segments": [exif_many_entries(2000)] * 64,
        "garbage-tiff": [b"II*\x00" + b"\xff" * 4000],
        "big-endian-loop": [
            b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x0f\x00\x02\x00\x00\x00\x04"
            b"Cam\x00\x00\x00\x00\x08"
        ],
    }
    cases = [
        HostileFile(f"exif-{name}.jpg", _with_app1(base, p), ACCEPT) for name, p in bombs.items()
    ]
    png = images.png(100, 100)
    huge_exif = _png_chunk(b"eXIf", exif_many_entries(20000)[:200_000])
    cases.append(HostileFile("exif-png-chunk.png", png[:33] + huge_exif + png[33:], HANDLED))
    return cases


# --- dimensions ---------------------------------------------------------------------------


def jpeg_with_size(width: int, height: int) -> bytes:
    """A real JPEG whose SOF0 frame header is rewritten to claim other dimensions."""
    data = bytearray(images.jpeg(80, 80))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_vp8x(width: int, height: int) -> bytes:
    """A WebP extended header announcing a canvas of the given size, with no image data."""
    flags = b"\x00\x00\x00\x00"
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunk = b"VP8X" + struct.pack("<I", 10) + flags + canvas
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def absurd_dimensions() -> list[HostileFile]:
    return [
        HostileFile("png-100k-square.png", images.png_header_only(100_000, 100_000), REJECT_IMAGE),
        HostileFile("png-int-max.png", images.png_header_only(2**31 - 1, 2**31 - 1), REJECT_IMAGE),
        HostileFile("png-zero.png", images.png_header_only(0, 0), REJECT_IMAGE),
        HostileFile("png-sliver.png", images.png_header_only(1, 70_000), REJECT_IMAGE),
        HostileFile("png-sliver-real.png", images.png(2, 2000), REJECT_IMAGE),
        HostileFile("jpeg-65535.jpg", jpeg_with_size(65535, 65535), REJECT_IMAGE),
        HostileFile("jpeg-zero-width.jpg", jpeg_with_size(0, 80), REJECT_IMAGE),
        HostileFile("jpeg-lies-bigger.jpg", jpeg_with_size(1500, 1500), HANDLED),
        HostileFile("webp-16k-canvas.webp", webp_vp8x(16384, 16384), REJECT_IMAGE),
        HostileFile("tiny-10px.jpg", images.jpeg(10, 10), REJECT_IMAGE),
    ]


# --- truncation and corruption ----------------------------------------------------------


def truncations(name: str, data: bytes) -> list[HostileFile]:
    """Cut short; losing only the end marker may still decode, anything earlier may not."""
    cuts = {"magic-only": 8, "header": 40, "half": len(data) // 2}
    cases = [HostileFile(f"{name}-trunc-{label}", data[:n], BAD_IMAGE) for label, n in cuts.items()]
    return [*cases, HostileFile(f"{name}-trunc-minus-16", data[:-16], HANDLED)]


def corruptions() -> list[HostileFile]:
    jpeg = noisy_jpeg()
    png = images.png(100, 100)
    webp_lossy = webp()
    garbled_jpeg = bytearray(jpeg)
    garbled_jpeg[len(jpeg) // 3 : len(jpeg) // 3 + 400] = b"\x00" * 400
    bad_crc = bytearray(png)
    bad_crc[29] ^= 0xFF  # IHDR's CRC
    bad_idat = bytearray(png)
    idat = png.index(b"IDAT")
    bad_idat[idat + 4 : idat + 20] = b"\xde\xad\xbe\xef" * 4
    no_huffman = jpeg.replace(b"\xff\xc4", b"\xff\xfe", 4)
    webp_bad = bytearray(webp_lossy)
    webp_bad[30:60] = b"\xaa" * 30
    return [
        HostileFile("jpeg-zeroed-scan.jpg", bytes(garbled_jpeg), HANDLED),
        HostileFile("png-bad-ihdr-crc.png", bytes(bad_crc), REJECT_IMAGE),
        HostileFile("png-bad-idat.png", bytes(bad_idat), REJECT_IMAGE),
        HostileFile("jpeg-no-huffman.jpg", no_huffman, HANDLED),
        HostileFile("webp-garbled.webp", bytes(webp_bad), REJECT_IMAGE),
        HostileFile(
            "riff-not-webp.webp", b"RIFF\x10\x00\x00\x00WAVEfmt " + b"\x00" * 20, REJECT_TYPE
        ),
        HostileFile(
            "webp-riff-size-lies.webp", b"RIFF\xff\xff\xff\xffWEBPVP8 " + b"\x00" * 8, REJECT_IMAGE
        ),
    ]


# --- polyglots, other formats, archives, empty files ------------------------------------


def polyglots() -> list[HostileFile]:
    jpeg, png = images.jpeg(), images.png(100, 100)
    html = b"<html><body><script>alert(document.cookie)</script></body></html>"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    comment = b"\xff\xfe" + struct.pack(">H", len(html) + 2) + html
    return [
        HostileFile(
            "jpeg-plus-zip.jpg", jpeg + _zip({"evil.sh": b"#!/bin/sh\nrm -rf /\n"}), HANDLED
        ),
        HostileFile("png-plus-html.png", png + html, HANDLED),
        HostileFile("png-plus-svg.png", png + svg, HANDLED),
        HostileFile("jpeg-html-comment.jpg", jpeg[:2] + comment + jpeg[2:], HANDLED),
        HostileFile("zip-then-jpeg.jpg", _zip({"a.txt": b"x"}) + jpeg, REJECT_TYPE),
        HostileFile("html-named-jpg.jpg", html, REJECT_TYPE),
    ]


def foreign_formats() -> list[HostileFile]:
    def pil(fmt: str) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (100, 100), (1, 2, 3)).save(buffer, fmt)
        return buffer.getvalue()

    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            b'<!ENTITY %c "&%c;&%c;&%c;&%c;">' % (c, c - 1, c - 1, c - 1, c - 1)
            for c in range(ord("b"), ord("k"))
        )
        + b']><svg xmlns="http://www.w3.org/2000/svg"><text>&j;</text></svg>'
    )
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    avif = struct.pack(">I", 20) + b"ftypavif" + b"\x00\x00\x00\x00avif" + b"\x00" * 64
    jpeg = images.jpeg()
    return [
        HostileFile(
            "drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9e9"/>', REJECT_TYPE
        ),
        HostileFile("billion-laughs.svg", laughs, REJECT_TYPE),
        HostileFile("photo.heic", heic, REJECT_TYPE),
        HostileFile("photo.avif", avif, REJECT_TYPE),
        HostileFile("photos.zip", _zip({"a.jpg": jpeg, "b.jpg": jpeg}), REJECT_TYPE),
        HostileFile("zip-bomb.zip", _zip({"z": b"\x00" * 5_000_000}), REJECT_TYPE),
        HostileFile("photo.jpg.gz", gzip.compress(jpeg), REJECT_TYPE),
        HostileFile("photos.tar", _tar({"a.jpg": jpeg}), REJECT_TYPE),
        HostileFile("photo.gif", pil("GIF"), REJECT_TYPE),
        HostileFile("photo.bmp", pil("BMP"), REJECT_TYPE),
        HostileFile("photo.tiff", pil("TIFF"), REJECT_TYPE),
        HostileFile("doc.pdf", b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", REJECT_TYPE),
        HostileFile("prog.elf", b"\x7fELF\x02\x01\x01" + b"\x00" * 100, REJECT_TYPE),
        HostileFile("empty.jpg", b"", REJECT_IMAGE),
        HostileFile("one-byte.jpg", b"\xff", REJECT_TYPE),
        HostileFile("jpeg-magic-only.jpg", b"\xff\xd8\xff", REJECT_IMAGE),
        HostileFile("png-magic-only.png", b"\x89PNG\r\n\x1a\n", REJECT_IMAGE),
        HostileFile("nul-bytes.jpg", b"\x00" * 4096, REJECT_TYPE),
    ]


def odd_but_valid() -> list[HostileFile]:
    """Legal images in unusual modes: the API must take them and the worker must cope."""

    def png_mode(mode: str, size: tuple[int, int] = (100, 90)) -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, size).save(buffer, "PNG")
        return buffer.getvalue()

    def cmyk_jpeg() -> bytes:
        buffer = io.BytesIO()
        Image.new("CMYK", (100, 100), (0, 50, 100, 0)).save(buffer, "JPEG")
        return buffer.getvalue()

    def apng(frames: int) -> bytes:
        buffer = io.BytesIO()
        first, *rest = [Image.new("RGB", (80, 80), (i * 9 % 255, 0, 0)) for i in range(frames)]
        first.save(buffer, "PNG", save_all=True, append_images=rest)
        return buffer.getvalue()

    return [
        HostileFile("gray16.png", png_mode("I;16"), ACCEPT),
        HostileFile("palette.png", png_mode("P"), ACCEPT),
        HostileFile("gray-alpha.png", png_mode("LA"), ACCEPT),
        HostileFile("rgba.png", png_mode("RGBA"), ACCEPT),
        HostileFile("one-bit.png", png_mode("1"), ACCEPT),
        HostileFile("cmyk.jpg", cmyk_jpeg(), ACCEPT),
        HostileFile("progressive.jpg", noisy_jpeg(progressive=True), ACCEPT),
        HostileFile("lossless.webp", webp(lossless=True), ACCEPT),
        HostileFile("animated-40-frames.png", apng(40), ACCEPT),
        HostileFile("wide-64px.jpg", images.jpeg(4000, 64), ACCEPT),
    ]


def all_cases() -> list[HostileFile]:
    builders: list[Callable[[], list[HostileFile]]] = [
        exif_bombs,
        absurd_dimensions,
        corruptions,
        polyglots,
        foreign_formats,
        odd_but_valid,
    ]
    cases = [case for build in builders for case in build()]
    for name, data in (("jpeg", noisy_jpeg()), ("png", images.png(100, 100)), ("webp", webp())):
        cases.extend(truncations(name, data))
    return cases
