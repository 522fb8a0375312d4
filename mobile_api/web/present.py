"""How the workspace shows the domain's values: codes in words, colours, labels and where
they go, photo names. The templates use these and nothing else (`pages.templates`)."""

from __future__ import annotations

from enum import Enum

from cdat.findings import DamageInstance, PartInstance, PhotoAnalysis
from cdat.label_layout import LabelSpot, place_labels
from cdat.merge import seen_again as merge_seen_again
from cdat.taxonomy import DamageType

DAMAGE_COLOURS = {  # CSS versions of inference.overlay.DAMAGE_COLOURS (same hues)
    "dent": "#e67200",
    "scratch": "#56b4e9",
    "crack": "#009e73",
    "glass_shatter": "#f0e442",
    "lamp_broken": "#0072b2",
    "tire_flat": "#cc79a7",
    "broken_part": "#d55e00",
}


def words(value: Enum | str | None) -> str:
    """A code as the page writes it: `front_left_door` is "front left door"."""
    return code(value).replace("_", " ")


def code(value: Enum | str | None) -> str:
    """An enum's value (what forms send back), a string as it is, None as ""."""
    if isinstance(value, Enum):
        return str(value.value)
    return value or ""


def colour(kind: DamageType) -> str:
    return DAMAGE_COLOURS[kind.value]


def part_label(part: PartInstance) -> str:
    return words(part.part)


def damage_label(number: int, damage: DamageInstance) -> str:
    """The label on a damage's box; `number` is its row in the photo's table (from 1)."""
    return f"#{number} {code(damage.severity)} {words(damage.damage_type)}"


def seen_again(photo: PhotoAnalysis) -> dict[int, tuple[int, str]]:
    """Damage row (from 0) -> (the row number, from 1 as the table shows it, of the damage
    it repeats; how: "outline" or "name") for each damage that repeats a surer one
    (`cdat.merge.seen_again`): listed apart, under a fold, and drawn only while it is open."""
    return {k: (seen.under + 1, seen.how) for k, seen in merge_seen_again(photo.damages).items()}


def repeat_counts(again: dict[int, tuple[int, str]]) -> dict[int, int]:
    """Damage row (from 0) -> how many repeats `seen_again` groups under it (rows with none
    are left out): its Delete deletes them with it."""
    counts: dict[int, int] = {}
    for under, _how in again.values():
        counts[under - 1] = counts.get(under - 1, 0) + 1
    return counts


def label_positions(photo: PhotoAnalysis) -> dict[str, list[tuple[float, float]]]:
    """Where the workspace's SVG writes each part and damage label (`cdat.label_layout`)."""
    size = font_size(photo)

    def spot(x: float, y: float, text: str) -> LabelSpot:
        return LabelSpot(x, y, len(text) * size * 0.6, size)  # about a sans-serif's width

    parts = [spot(p.box.x1 + 4, p.box.y1 + size, part_label(p)) for p in photo.parts]
    damages = [
        spot(d.box.x1, max(d.box.y1 - 4, size), damage_label(i, d))
        for i, d in enumerate(photo.damages, start=1)
    ]
    placed = [(round(x, 1), round(y, 1)) for x, y in place_labels(parts + damages, size * 1.2)]
    return {"parts": placed[: len(parts)], "damages": placed[len(parts) :]}


def font_size(photo: PhotoAnalysis) -> float:
    return round(photo.width / 32, 1)


def photos_named(text: str, names: dict[str, str]) -> str:
    """Reasons name photos by id; the page calls them Photo 1, 2, ..."""
    for photo_id, name in names.items():
        text = text.replace(f"photo {photo_id}", name).replace(photo_id, name)
    return text
