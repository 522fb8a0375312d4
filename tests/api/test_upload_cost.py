"""What an upload may cost the API (issue 33, item 1): pixels checked from the header, the
pixel data proved whole without holding a bitmap, the location-free copy made without a
decode, photos checked a few at a time (503 beyond), and pixels bounded per claim."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile, UnidentifiedImageError

from mobile_api.api.photo_checks import PhotoChecks
from mobile_api.claims.images import check_photo
from mobile_api.errors import InvalidImage, ServiceUnavailable
from tests.api.test_claims import upload
from tests.conftest import make_settings, open_claim, serving

LIMITS = {"max_bytes": 20 << 20, "max_pixels": 50_000_000, "min_side": 64}
GPS = {1: "N", 2: (12.0, 58.0, 0.0), 3: "E", 4: (77.0, 35.0, 0.0)}


def _png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + crc


def _png_rows(width: int, height: int, rows: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (101, 67), (10, 200, 30)),
        Image.new("RGBA", (80, 90), (10, 200, 30, 128)),
        Image.new("L", (65, 65), 7),
        Image.new("1", (99, 70), 1),
        Image.new("I;16", (70, 70), 3000),
        Image.new("P", (77, 66), 3),
    ],
    ids=["rgb", "rgba", "grey", "bilevel", "grey16", "palette"],
)
@pytest.mark.parametrize("interlace", [0, 1], ids=["plain", "interlaced"])
def test_whole_pngs_of_every_kind_pass_the_row_check(image: Image.Image, interlace: int) -> None:
    # given a whole PNG of some colour type, depth and interlacing
    data = _png(image, interlace=interlace)
    # when it is checked, then it is accepted at its size
    checked = check_photo(data, "p.png", **LIMITS)
    assert (checked.width, checked.height) == image.size


def test_a_png_whose_rows_stop_short_is_refused() -> None:
    # given a PNG whose compressed data is a complete stream of too few rows
    data = _png_rows(64, 64, b"\x00" + b"\x10" * 64)
    # when it is checked, then it is refused as truncated
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        check_photo(data, "short.png", **LIMITS)


def test_a_png_with_an_unknown_row_filter_is_refused() -> None:
    # given a PNG whose tenth row starts with filter type 9
    rows = bytearray((b"\x00" + b"\x10" * 64) * 64)
    rows[9 * 65] = 9
    # when it is checked, then it is refused as corrupt
    with pytest.raises(InvalidImage, match="filter"):
        check_photo(_png_rows(64, 64, bytes(rows)), "bad.png", **LIMITS)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (b"IHDR", "cannot read the image header"),
        (b"IDAT", "truncated or corrupt.*IDAT fails its CRC"),
        (b"IEND", "truncated or corrupt.*IEND fails its CRC"),
    ],
)
def test_a_png_whose_critical_chunk_fails_its_crc_is_refused(kind: bytes, message: str) -> None:
    # given a whole PNG whose one critical chunk carries a wrong CRC (the serving decoder,
    # libpng under OpenCV, refuses such a file: found by the upload fuzzer)
    data = bytearray(_png_rows(64, 64, (b"\x00" + b"\x10" * 64) * 64))
    at = data.index(kind)
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 4 + length] ^= 0xFF
    # when it is checked, then it is refused as corrupt, naming the chunk
    with pytest.raises(InvalidImage, match=message):
        check_photo(bytes(data), "crc.png", **LIMITS)


def test_the_check_never_goes_through_a_patched_image_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given Image.open patched as Ultralytics patches it once imported: an unidentified file
    # makes it install a HEIC plugin at run time (here: the import that fails offline)
    real_open, calls = Image.open, []

    def patched(*args: object, **kwargs: object) -> Image.Image:
        calls.append(args)
        try:
            return real_open(*args, **kwargs)  # type: ignore[arg-type]
        except UnidentifiedImageError:
            raise ModuleNotFoundError("No module named 'pi_heif'") from None

    monkeypatch.setattr(Image, "open", patched)
    broken = bytearray(_png_rows(64, 64, (b"\x00" + b"\x10" * 64) * 64))
    broken[broken.index(b"IHDR") + 4] ^= 0xFF  # IHDR's payload no longer matches its CRC
    whole = [_png(Image.new("RGB", (80, 70))), _jpeg(), _webp()]
    # when a photo whose header no parser reads is checked, then it is one clear refusal
    with pytest.raises(InvalidImage, match="cannot read the image header"):
        check_photo(bytes(broken), "broken.png", **LIMITS)
    # and whole photos of every format are checked without the patched opener
    assert [check_photo(d, "p", **LIMITS).width for d in whole] == [80, 80, 80]
    assert calls == []


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 70), (9, 9, 9)).save(buffer, "JPEG")
    return buffer.getvalue()


def _webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 70), (9, 9, 9)).save(buffer, "WEBP")
    return buffer.getvalue()


def test_a_png_whose_ancillary_chunk_fails_its_crc_is_accepted() -> None:
    # given a whole PNG with a text chunk whose CRC is wrong (decoders skip such a chunk)
    whole = _png_rows(64, 64, (b"\x00" + b"\x10" * 64) * 64)
    text = bytearray(_chunk(b"tEXt", b"Comment\x00hello"))
    text[-1] ^= 0xFF
    end = whole.index(b"IEND") - 4
    data = whole[:end] + bytes(text) + whole[end:]
    # when it is checked, then it is accepted
    assert check_photo(data, "text.png", **LIMITS).width == 64


def test_a_large_png_with_gps_is_checked_and_copied_without_a_full_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the probe's photo: 7000x7000 of one colour, a GPS EXIF block, 160 KB
    exif = Image.Exif()
    exif.get_ifd(0x8825).update(GPS)
    data = _png(Image.new("RGB", (7000, 7000), (90, 120, 200)), exif=exif.tobytes())
    loads: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def counted(self: ImageFile.ImageFile) -> object:
        loads.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counted)
    # when it is checked
    checked = check_photo(data, "big.png", **LIMITS)
    # then no bitmap was decoded, the location is read, and the copy has none
    assert loads == []
    assert checked.exif["GPSLatitude"] == pytest.approx(12.966667)
    assert checked.public_data is not None
    assert 0x8825 not in Image.open(io.BytesIO(checked.public_data)).getexif()


def test_a_large_jpeg_is_decoded_at_an_eighth_of_its_size() -> None:
    # given a 4000x3000 JPEG
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (20, 40, 60)).save(buffer, "JPEG")
    decoded: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def seen(self: ImageFile.ImageFile) -> object:
        result = real(self)
        decoded.append(self.im.size if self.im is not None else (0, 0))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ImageFile.ImageFile, "load", seen)
        # when it is checked
        checked = check_photo(buffer.getvalue(), "big.jpg", **LIMITS)
    # then its pixels were decoded at 500x375, and its size is the full one
    assert decoded == [(500, 375)]
    assert (checked.width, checked.height) == (4000, 3000)


def test_a_full_check_pool_answers_503_at_once() -> None:
    # given a pool of one worker and no queue, busy with one photo
    pool = PhotoChecks(workers=1, queue=0)
    started, release = threading.Event(), threading.Event()

    def busy() -> str:
        started.set()
        release.wait(10)
        return "checked"

    async def scenario() -> tuple[str, BaseException | None]:
        first = asyncio.ensure_future(pool.run(busy))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        # when a second photo arrives
        refused: BaseException | None = None
        try:
            await pool.run(lambda: "never")
        except ServiceUnavailable as exc:
            refused = exc
        release.set()
        return await first, refused

    try:
        done, refused = asyncio.run(scenario())
    finally:
        pool.shutdown()
    # then it is refused as unavailable (503, Retry-After) and the first one finishes
    assert isinstance(refused, ServiceUnavailable)
    assert done == "checked"


def test_pixels_per_claim_are_bounded(tmp_path: Path) -> None:
    # given a claim limited to 100,000 pixels in all
    with serving(make_settings(tmp_path, max_claim_pixels=100_000)) as client:
        claim_id, headers = open_claim(client)
        first = upload(client, claim_id, headers, client_png(200, 200, 1))
        # when photos of 40,000 + 90,000 more pixels are sent
        second = upload(client, claim_id, headers, client_png(300, 300, 2))
        stored = client.get(f"/v1/claims/{claim_id}", headers=headers).json()["photos"]
    # then the second is refused with a 413 naming the limit, and nothing of it is stored
    assert first.status_code == 201
    assert second.status_code == 413, second.text
    assert "megapixels" in second.json()["error"]["message"]
    assert len(stored) == 1


def client_png(width: int, height: int, shade: int) -> bytes:
    return _png(Image.new("RGB", (width, height), (shade, shade, shade)))
