"""The train pass: the served analyzer over the train photos at a low damage threshold.

The damage verifier (`training.damage_verifier`) and the part-family stage
(`training.part_family --detections`) learn from its detections; its analyses are kept in a
cache so that a second run with the same detector analyses nothing. The cache names the
second looks it was made with (`CDAT_DAMAGE_CROP_LOOK`, `CDAT_DAMAGE_FLIP_TTA`, the zoomed-out
look on photos of no whole car): a run with other looks is refused it rather than taught
detections it would never make.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cdat.findings import PhotoAnalysis
from training.claim_eval import DATASETS, INTACT_CLOSEUPS, PART_NAMED
from training.errors import TrainingError

if TYPE_CHECKING:
    from training.damage_verifier import VerifierHyperparameters

OUTLINED = ("car-parts-damage", "damaged-parts", "damage-severity")


@dataclass(frozen=True)
class TrainPhoto:
    source: str
    path: Path
    instances: list[Any]


INTACT = ("car-parts", INTACT_CLOSEUPS)
"""Sources of intact cars: every detection on them is false."""

SPLIT_SEED = 0
"""The re-split the data sets are converted and measured with (`training.convert`, the
`--seed` of every evaluation). The pass's photos are that re-split's train photos whatever
`hp.seed` samples them with: a re-split of its own would put val and test photos in."""


def train_photos(
    hp: VerifierHyperparameters, data_root: Path | None, closeups_dir: Path | None = None
) -> list[TrainPhoto]:
    """The pass's photos; with `hp.intact_closeups`, the intact cars' close-up windows are
    written to `closeups_dir` (the pass reads photos from files)."""
    from training.backgrounds import background_closeups, read_exclusions, split_photos
    from training.claim_eval import check_sources, typed_photos
    from training.closeup import held_out_photos

    data_root = check_sources(data_root)
    rng = np.random.default_rng(hp.seed)
    photos: list[TrainPhoto] = []
    for source in OUTLINED:
        config = DATASETS / f"{source}.yaml"
        split = (
            held_out_photos(config, "train", SPLIT_SEED, data_root)
            if source in PART_NAMED
            else list(typed_photos(config, "train", SPLIT_SEED, data_root))
        )
        if len(split) > hp.max_photos:
            keep = sorted(rng.permutation(len(split))[: hp.max_photos])
            split = [split[k] for k in keep]
        photos += [TrainPhoto(source, path, list(instances)) for path, instances in split]
    damaged = read_exclusions(DATASETS / "car-parts-damaged.txt")
    cars = split_photos(DATASETS / "car-parts.yaml", "train", SPLIT_SEED, data_root)
    photos += [TrainPhoto("car-parts", p, []) for p in cars if p.name not in damaged]
    if hp.intact_closeups:
        if closeups_dir is None:
            raise TrainingError("intact close-ups need a folder to be written to")
        closeups_dir.mkdir(parents=True, exist_ok=True)
        for closeup in background_closeups(data_root, damaged, SPLIT_SEED):
            path = closeups_dir / closeup.name
            path.write_bytes(closeup.jpeg)
            photos.append(TrainPhoto(INTACT_CLOSEUPS, path, []))
    return photos


@dataclass(frozen=True)
class Detector:
    """The damage model whose detections are the examples: `file` in the promoted model's
    place (None: the promoted model as registered), served with the `severity` stage,
    with the second looks it takes (`inference.loading.second_looks_of`, and the zoomed-out
    look on photos the gate reads under `zoom_look_view_below`: inference/zoom_look.py)."""

    sha256: str
    file: Path | None = None
    severity: Path | None = None
    second_looks: tuple[str, ...] = ()
    zoom_look_view_below: float | None = None


def zoomed_out(bar: float | None) -> tuple[str, ...]:
    """The name a pass records for the zoomed-out look under `bar` (none where None)."""
    return () if bar is None else (f"zoomed-out under {bar:g}",)


def detector_of(
    chosen: Path | None, conf: float, zoom_look_view_below: float | None = None
) -> Detector:
    """The detector of a train pass at `conf`: `chosen`, or the promoted model (as registered,
    also where `chosen` is its very file); it takes the zoomed-out look under
    `zoom_look_view_below` where given, else where the promoted entry serves one on every
    photo under its bar (one taken only where the verified first look finds damage comes
    after the verifier's verdict, so a pass leaves it out: claim_rules.pass_analyzer)."""
    from inference.loading import second_looks_of
    from inference.registry import Registry, sha256_of
    from training.claim_rules import pass_settings

    settings = pass_settings(conf)
    registry = Registry.load(settings.model_dir)
    promoted = registry.promoted_entry("damage")
    if promoted is None:
        raise TrainingError(f"{registry.model_dir}: no promoted damage model to run the pass")
    sha = promoted.sha256 if chosen is None else sha256_of(chosen)
    if sha == promoted.sha256:
        served = None if promoted.zoom_look_where_found else promoted.zoom_look_view_below
        bar = zoom_look_view_below or served
        looks = second_looks_of(settings, promoted.crop_look) + zoomed_out(bar)
        return Detector(sha, second_looks=looks, zoom_look_view_below=bar)
    severity = registry.model_dir / promoted.severity_model if promoted.severity_model else None
    looks = second_looks_of(settings, False) + zoomed_out(zoom_look_view_below)
    return Detector(sha, chosen, severity, looks, zoom_look_view_below)


def analyzer_of(detector: Detector, conf: float) -> Any:
    """The analyzer that makes `detector`'s pass at `conf` (training.claim_rules.pass_analyzer),
    with its zoomed-out look where it takes one."""
    from training.claim_rules import pass_analyzer, pass_settings
    from training.claims import with_zoom_look

    analyzer = pass_analyzer(pass_settings(conf), detector.file, detector.severity)
    bar = detector.zoom_look_view_below
    if bar is not None and analyzer.damage.entry.zoom_look_view_below != bar:
        analyzer.damage = with_zoom_look(analyzer.damage, bar)
    return analyzer


def cached_pass(
    photos: Sequence[TrainPhoto], conf: float, cache: Path, detector: Detector
) -> dict[str, PhotoAnalysis] | None:
    """The cached analyses, if `cache` holds every photo's by `detector` at `conf`; else None.
    A pass made with other second looks is an error, not a miss: made again, it would
    replace the cache another run needs. (Passes saved before the looks were recorded are
    read as before.)"""
    if not cache.is_file():
        return None
    try:
        state = pickle.loads(cache.read_bytes())
        same = state.get("conf") == conf and state.get("detector") == detector.sha256
        kept = state["photos"] if same else {}
        looks = None if state.get("second_looks") is None else tuple(state["second_looks"])
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, AttributeError) as exc:
        problem = f"--cache {cache}: not a train pass this script saved ({exc})"
        raise TrainingError(problem) from exc
    if looks is not None and looks != detector.second_looks:
        raise TrainingError(
            f"--cache {cache}: made with second looks {_named(looks)}, and this run takes "
            f"{_named(detector.second_looks)} (CDAT_DAMAGE_CROP_LOOK, CDAT_DAMAGE_FLIP_TTA, "
            "--zoom-look-view-below); name another --cache"
        )
    return dict(kept) if all(str(p.path) in kept for p in photos) else None


def _named(looks: Sequence[str]) -> str:
    return " and ".join(looks) or "none"


def train_pass(
    photos: Sequence[TrainPhoto], conf: float, cache: Path, detector: Detector | None = None
) -> dict[str, PhotoAnalysis]:
    """Each photo's analysis (by path) by `detector` (default: the promoted damage model),
    read from `cache` if made by the same model at the same threshold; no verifier, whole-car
    rule or part-family stage (they come after)."""
    detector = detector or detector_of(None, conf)
    kept = cached_pass(photos, conf, cache, detector)
    if kept is not None:
        return kept
    from cdat.analysis import PhotoInput

    analyzer = analyzer_of(detector, conf)
    out = {}
    for photo in photos:
        data = photo.path.read_bytes()
        out[str(photo.path)] = analyzer.analyze([PhotoInput(photo.path.name, data)])[0]
    cache.parent.mkdir(parents=True, exist_ok=True)
    state = {"conf": conf, "detector": detector.sha256, "second_looks": detector.second_looks,
             "photos": out}  # fmt: skip
    cache.write_bytes(pickle.dumps(state))
    return out
