"""What a policyholder-facing response may carry: no capture location."""

from __future__ import annotations

import io
import warnings
from typing import Any

from PIL import Image

GPS_IFD = 0x8825
LOCATION_KEYS = ("GPSLatitude", "GPSLongitude")


def without_location(exif: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in exif.items() if key not in LOCATION_KEYS}


def strip_location(data: bytes) -> bytes:
    """The photo without its GPS EXIF block; unchanged bytes when it has none.

    Re-encoding is the price of removing it (JPEG at quality 95), paid only for
    photos that carry a location.
    """
    with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as image:
        warnings.simplefilter("ignore", UserWarning)  # broken EXIF tags warn one by one
        exif = image.getexif()
        if GPS_IFD not in exif:
            return data
        del exif[GPS_IFD]
        buffer = io.BytesIO()
        options: dict[str, Any] = {"exif": exif.tobytes()}
        if image.format == "JPEG":
            options.update(quality=95, subsampling="keep")
        image.save(buffer, image.format, **options)
    return buffer.getvalue()
