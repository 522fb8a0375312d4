"""What a policyholder-facing response may carry: no capture location.

The policyholder's copy of a photo is made by rewriting its metadata, never its pixels: the
GPS block leaves the EXIF, and the blocks that can carry a location in other words (XMP,
IPTC, PNG text chunks, data after the image's end such as a second picture) are dropped.
No decode and no re-encode, so the copy costs a pass over the bytes and the pixels are the
ones uploaded.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

from PIL import Image

GPS_IFD = 0x8825
LOCATION_KEYS = ("GPSLatitude", "GPSLongitude")
EXIF_HEADER = b"Exif\x00\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
"""PNG chunks of free text: XMP (`XML:com.adobe.xmp`), raw EXIF/IPTC profiles, comments."""
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def without_location(exif: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in exif.items() if key not in LOCATION_KEYS}


def strip_location(data: bytes) -> bytes:
    """The photo without location metadata; the same bytes object when there is none.

    Raises ValueError when the file's structure cannot be followed (the upload is refused:
    a location we could not remove is never served).
    """
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    return data


def exif_without_gps(tiff: bytes) -> bytes | None:
    """A TIFF-format EXIF block without its GPS IFD; None when it has none."""
    exif = Image.Exif()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # broken EXIF tags warn one by one
        exif.load(tiff)
        if GPS_IFD not in exif:
            return None
        del exif[GPS_IFD]
        return exif.tobytes()[len(EXIF_HEADER) :]


# JPEG: markers and segments up to the first scan, the scans copied as they are.


def _jpeg(data: bytes) -> bytes:
    out, changed, pos, size = [data[:2]], False, 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            raise ValueError(f"JPEG: no marker at byte {pos}")
        marker = data[pos + 1] if pos + 1 < size else 0xD9
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image: whatever follows (a second picture) is dropped
            out.append(b"\xff\xd9")
            changed = changed or pos + 2 < size
            return b"".join(out) if changed else data
        if marker in _JPEG_STANDALONE:
            out.append(data[pos : pos + 2])
            pos += 2
            continue
        if pos + 4 > size:
            raise ValueError("JPEG: truncated segment header")
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        end = pos + 2 + length
        if length < 2 or end > size:
            raise ValueError("JPEG: a segment runs past the end of the file")
        payload = data[pos + 4 : end]
        kept = _jpeg_segment(marker, payload)
        if kept is None:
            changed = True
        elif kept is not payload:
            out.append(b"\xff" + bytes([marker]) + struct.pack(">H", len(kept) + 2) + kept)
            changed = True
        else:
            out.append(data[pos:end])
        pos = end
        if marker == 0xDA:  # a scan: entropy-coded data up to the next real marker
            scan_end = _scan_end(data, pos)
            out.append(data[pos:scan_end])
            pos = scan_end
    raise ValueError("JPEG: no end-of-image marker")


def _jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment's payload to keep (the same object when unchanged), or None to drop it."""
    if marker == 0xE1 and payload.startswith(EXIF_HEADER):
        stripped = exif_without_gps(payload[len(EXIF_HEADER) :])
        if stripped is None:
            return payload
        rewritten = EXIF_HEADER + stripped
        if len(rewritten) + 2 > 0xFFFF:
            raise ValueError("JPEG: the EXIF block without GPS does not fit one segment")
        return rewritten
    if marker == 0xE1:  # XMP and extended XMP
        return None
    if marker == 0xED:  # Photoshop IRB with IPTC (city, sub-location, ...)
        return None
    if marker == 0xE2 and payload.startswith(b"MPF\x00"):  # points at the dropped pictures
        return None
    return payload


def _scan_end(data: bytes, pos: int) -> int:
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise ValueError("JPEG: the image data ends without an end-of-image marker")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos = found + 1 if following == 0xFF else found + 2
            continue
        return found


# PNG: chunks; eXIf rewritten, text dropped, nothing after IEND.


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes, int, int]]:
    """(type, payload, start, end) of each chunk up to and including IEND."""
    pos, size = len(PNG_SIGNATURE), len(data)
    while pos + 8 <= size:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > size:
            raise ValueError(f"PNG: chunk {kind!r} runs past the end of the file")
        yield kind, data[pos + 8 : pos + 8 + length], pos, end
        if kind == b"IEND":
            return
        pos = end
    raise ValueError("PNG: no IEND chunk")


def _png(data: bytes) -> bytes:
    out, changed, last = [PNG_SIGNATURE], False, 0
    for kind, payload, start, end in png_chunks(data):
        last = end
        if kind in PNG_TEXT:
            changed = True
        elif kind == b"eXIf" and (stripped := _exif_payload_without_gps(payload)) is not None:
            out.append(_png_chunk(kind, stripped))
            changed = True
        else:
            out.append(data[start:end])
    changed = changed or last < len(data)
    return b"".join(out) if changed else data


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _exif_payload_without_gps(payload: bytes) -> bytes | None:
    """An eXIf/EXIF payload (TIFF, sometimes behind `Exif\\0\\0`) without GPS, or None."""
    prefix = EXIF_HEADER if payload.startswith(EXIF_HEADER) else b""
    stripped = exif_without_gps(payload[len(prefix) :])
    return None if stripped is None else prefix + stripped


# WebP: RIFF chunks; EXIF rewritten, XMP dropped, the VP8X flags and RIFF size fixed.

_WEBP_XMP_FLAG, _WEBP_EXIF_FLAG = 0x04, 0x08


def _webp(data: bytes) -> bytes:
    riff_end = 8 + struct.unpack("<I", data[4:8])[0]
    if riff_end > len(data):
        raise ValueError("WebP: the RIFF size runs past the end of the file")
    chunks: list[tuple[bytes, bytes]] = []
    changed, pos = riff_end < len(data), 12
    while pos + 8 <= riff_end:
        kind, length = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + length
        if end > riff_end:
            raise ValueError(f"WebP: chunk {kind!r} runs past the end of the file")
        payload = data[pos + 8 : end]
        pos = end + (length & 1)
        if kind == b"XMP ":
            changed = True
            continue
        if kind == b"EXIF" and (stripped := _exif_payload_without_gps(payload)) is not None:
            payload, changed = stripped, True
        chunks.append((kind, payload))
    if not changed:
        return data
    kinds = {kind for kind, _ in chunks}
    body = b"WEBP"
    for kind, payload in chunks:
        if kind == b"VP8X":
            flags = payload[0] & ~_WEBP_XMP_FLAG
            if b"EXIF" not in kinds:
                flags &= ~_WEBP_EXIF_FLAG
            payload = bytes([flags]) + payload[1:]
        body += kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body
