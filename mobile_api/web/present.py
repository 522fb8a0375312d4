"""How the workspace shows things: label sizes and places, colours, photo names."""

from __future__ import annotations

from typing import Any

from cdat.label_layout import LabelSpot, place_labels

DAMAGE_COLOURS = {  # CSS versions of inference.overlay.DAMAGE_COLOURS (same hues)
    "dent": "#e67200",
    "scratch": "#56b4e9",
    "crack": "#009e73",
    "glass_shatter": "#f0e442",
    "lamp_broken": "#0072b2",
    "tire_flat": "#cc79a7",
    "broken_part": "#d55e00",
}


def label_positions(photo: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Where the workspace's SVG writes each part and damage label (`cdat.label_layout`)."""
    size = font_size(photo)

    def spot(x: float, y: float, text: str) -> LabelSpot:
        return LabelSpot(x, y, len(text) * size * 0.6, size)  # about a sans-serif's width

    parts = [
        spot(p["box"]["x1"] + 4, p["box"]["y1"] + size, p["part"].replace("_", " "))
        for p in photo.get("parts", [])
    ]
    damages = [
        spot(
            d["box"]["x1"],
            max(d["box"]["y1"] - 4, size),
            f"#{i} {d['severity']} {d['damage_type'].replace('_', ' ')}",
        )
        for i, d in enumerate(photo.get("damages", []), start=1)
    ]
    placed = [(round(x, 1), round(y, 1)) for x, y in place_labels(parts + damages, size * 1.2)]
    return {"parts": placed[: len(parts)], "damages": placed[len(parts) :]}


def font_size(photo: dict[str, Any]) -> float:
    return round(float(photo["width"]) / 32, 1)


def photos_named(text: str, names: dict[str, str]) -> str:
    """Reasons name photos by id; the page calls them Photo 1, 2, ..."""
    for photo_id, name in names.items():
        text = text.replace(f"photo {photo_id}", name).replace(photo_id, name)
    return text
