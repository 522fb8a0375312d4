"""Dataset and training-set config files (YAML under `datasets/`).

A *dataset config* describes one source data set as published (COCO or YOLO
polygons), where it lives, its licence, and how each source class maps into the
project's taxonomy (or is dropped with `null`). A *training config* names the
task (`damage` or `parts`) and the dataset configs merged into it. A user brings
their own data by writing one dataset config; no code changes.

Paths in a dataset config are relative to its `root`; a relative `root` is
relative to the data root (`CDAT_DATA_ROOT`, default `../shared/datasets` from
the repository root).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from cdat.taxonomy import CarPart, DamageType, damage_class_name, parse_damage_class
from training.errors import DatasetConfigError, DatasetError

Task = Literal["damage", "parts"]
CountCheck = Callable[[Any, Path, str], int]
SPLITS = ("train", "val", "test")
REPO_ROOT = Path(__file__).resolve().parent.parent
DAMAGE_TYPE_NAMES = tuple(d.value for d in DamageType)


@dataclass(frozen=True)
class SourceSplit:
    images: Path
    annotations: Path | None = None
    """COCO: the json file."""
    labels: Path | None = None
    """YOLO: the folder of txt label files."""


@dataclass(frozen=True)
class DatasetConfig:
    path: Path
    name: str
    task: Task
    format: Literal["coco", "yolo"]
    root: Path
    licence: str
    attribution: str
    splits: dict[str, SourceSplit]
    classes: dict[str, str | None]
    """Source class name -> project class name, or None to drop it."""
    resplit: dict[str, float] | None = None
    """None: keep the source splits; else fractions of source groups per split."""
    yolo_names: list[str] = field(default_factory=list)
    card: str = ""
    skip_unlabelled: bool = False
    """Leave out photos with no label at all: in a set of damage photos they hold damage
    nobody outlined, not a clean car."""
    closeup_crops: int = 0
    """Close-up crops added per train photo (training/closeup_crops.py)."""
    skip_images_with: frozenset[str] = frozenset()
    """Source classes whose photos are left out whole: their damage is outlined but
    not typed, so keeping the photo would teach the model that damage is background."""
    train_repeats: int = 1
    """How many times each train photo is written into a training conversion: set by a
    training config to weigh a small source up against a large one."""


@dataclass(frozen=True)
class TrainingConfig:
    path: Path
    name: str
    task: Task
    datasets: list[DatasetConfig]
    classes: list[str]
    """Model classes, in model output order."""


def default_data_root() -> Path:
    env = os.environ.get("CDAT_DATA_ROOT")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "datasets")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetConfigError(path, "<file>", "no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DatasetConfigError(path, "<document>", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetConfigError(path, "<document>", "must be a mapping")
    return raw


def _require(raw: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    if key not in raw:
        raise DatasetConfigError(path, key, "missing")
    value = raw[key]
    if not isinstance(value, kind):
        raise DatasetConfigError(path, key, f"must be a {kind.__name__}, got {value!r}")
    return value


def _task(raw: dict[str, Any], path: Path) -> Task:
    task = _require(raw, "task", str, path)
    if task not in ("damage", "parts"):
        raise DatasetConfigError(path, "task", f"must be 'damage' or 'parts', got {task!r}")
    return task


def check_project_class(name: str, task: Task) -> str:
    """Validate a project class name for a task; ValueError names the allowed ones."""
    if task == "parts":
        try:
            return CarPart(name).value
        except ValueError:
            allowed = ", ".join(p.value for p in CarPart)
            raise ValueError(f"unknown car part {name!r} (allowed: {allowed})") from None
    if name in DAMAGE_TYPE_NAMES:
        return name
    try:
        damage, severity = parse_damage_class(name)
    except ValueError:
        raise ValueError(
            f"unknown damage class {name!r} (expected a damage type such as 'dent', or "
            "'<severity>-<type>' such as 'minor-dent'; see cdat.taxonomy)"
        ) from None
    return damage_class_name(damage, severity)


def detector_class(name: str, classes: list[str]) -> tuple[str, str | None]:
    """A mapped source class -> (model class, labelled severity or None).

    A type-level damage model learns `dent` from a source labelled `minor-dent`; the
    severity is kept beside the label for the severity stage."""
    if name in classes or "-" not in name:
        return name, (name.partition("-")[0] if "-" in name else None)
    damage, severity = parse_damage_class(name)
    return damage.value, severity.value


def _classes(raw: dict[str, Any], task: Task, path: Path) -> dict[str, str | None]:
    mapping = _require(raw, "classes", dict, path)
    out: dict[str, str | None] = {}
    for source, target in mapping.items():
        if target is None:
            out[str(source)] = None
            continue
        try:
            out[str(source)] = check_project_class(str(target), task)
        except ValueError as exc:
            raise DatasetConfigError(path, f"classes.{source}", str(exc)) from None
    return out


def _splits(raw: dict[str, Any], fmt: str, root: Path, path: Path) -> dict[str, SourceSplit]:
    splits = _require(raw, "splits", dict, path)
    out: dict[str, SourceSplit] = {}
    for name, spec in splits.items():
        where = f"splits.{name}"
        if name not in SPLITS:
            raise DatasetConfigError(path, where, f"split must be one of {', '.join(SPLITS)}")
        if not isinstance(spec, dict) or "images" not in spec:
            raise DatasetConfigError(path, where, "needs an 'images' folder")
        key = "annotations" if fmt == "coco" else "labels"
        if key not in spec:
            raise DatasetConfigError(path, f"{where}.{key}", f"missing (needed for {fmt})")
        extra = {key: root / str(spec[key])}
        out[name] = SourceSplit(images=root / str(spec["images"]), **extra)
    if not out:
        raise DatasetConfigError(path, "splits", "no splits given")
    return out


def _resplit(raw: dict[str, Any], path: Path) -> dict[str, float] | None:
    value = raw.get("resplit", "source")
    if value == "source":
        return None
    if not isinstance(value, dict) or set(value) - set(SPLITS):
        raise DatasetConfigError(
            path, "resplit", "must be 'source' or {train, val, test} fractions"
        )
    fractions = {k: float(v) for k, v in value.items()}
    if abs(sum(fractions.values()) - 1.0) > 1e-6 or min(fractions.values()) < 0:
        raise DatasetConfigError(path, "resplit", f"fractions must sum to 1, got {fractions}")
    return fractions


def load_dataset_config(path: Path, data_root: Path | None = None) -> DatasetConfig:
    path = Path(path)
    raw = _read_yaml(path)
    task = _task(raw, path)
    fmt = _require(raw, "format", str, path)
    if fmt not in ("coco", "yolo"):
        raise DatasetConfigError(path, "format", f"must be 'coco' or 'yolo', got {fmt!r}")
    root = Path(os.path.expandvars(str(_require(raw, "root", str, path))))
    if not root.is_absolute():
        root = (data_root or default_data_root()) / root
    names = raw.get("names", [])
    if fmt == "yolo" and not (isinstance(names, list) and names):
        raise DatasetConfigError(path, "names", "YOLO data needs the class names list, in id order")
    return DatasetConfig(
        path=path,
        name=_require(raw, "name", str, path),
        task=task,
        format=fmt,
        root=root,
        licence=_require(raw, "licence", str, path),
        attribution=str(raw.get("attribution", "")),
        splits=_splits(raw, fmt, root, path),
        classes=_classes(raw, task, path),
        resplit=_resplit(raw, path),
        yolo_names=[str(n) for n in names],
        card=str(raw.get("card", "")),
        skip_images_with=_skip_images_with(raw, path),
        closeup_crops=_closeup_crops(raw, path),
        skip_unlabelled=_flag(raw, "skip_unlabelled", path),
    )


def _flag(raw: dict[str, Any], key: str, path: Path) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise DatasetConfigError(path, key, f"must be true or false, got {value!r}")
    return value


def _closeup_crops(raw: dict[str, Any], path: Path) -> int:
    return _crop_count(raw.get("closeup_crops", 0), path, "closeup_crops")


def _crop_count(value: Any, path: Path, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 16:
        raise DatasetConfigError(path, key, f"must be a whole number 0-16, got {value!r}")
    return value


MAX_TRAIN_REPEATS = 4
"""Beyond a few copies a photo is memorised rather than weighed up."""


def _repeat_count(value: Any, path: Path, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TRAIN_REPEATS:
        raise DatasetConfigError(
            path, key, f"must be a whole number 1-{MAX_TRAIN_REPEATS}, got {value!r}"
        )
    return value


def _per_dataset(
    raw: dict[str, Any], path: Path, datasets: list[DatasetConfig], key: str, count: CountCheck
) -> dict[str, int]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise DatasetConfigError(path, key, "must map dataset names to counts")
    names = {ds.name for ds in datasets}
    unknown = sorted(str(k) for k in value if k not in names)
    if unknown:
        raise DatasetConfigError(path, key, f"not datasets of this config: {unknown}")
    return {str(k): count(v, path, f"{key}.{k}") for k, v in value.items()}


def _with_mix_overrides(
    raw: dict[str, Any], path: Path, datasets: list[DatasetConfig]
) -> list[DatasetConfig]:
    """A training config's `closeup_crops: {dataset name: N}` overrides each named data
    set's own count, so one source can be trained with and without crops; its
    `train_repeats: {dataset name: N}` writes each train photo of a source N times."""
    crops = _per_dataset(raw, path, datasets, "closeup_crops", _crop_count)
    repeats = _per_dataset(raw, path, datasets, "train_repeats", _repeat_count)
    return [
        replace(
            ds,
            closeup_crops=crops.get(ds.name, ds.closeup_crops),
            train_repeats=repeats.get(ds.name, 1),
        )
        for ds in datasets
    ]


def _skip_images_with(raw: dict[str, Any], path: Path) -> frozenset[str]:
    value = raw.get("skip_images_with", [])
    if not isinstance(value, list):
        raise DatasetConfigError(path, "skip_images_with", "must be a list of source classes")
    unknown = {str(v) for v in value} - set(map(str, raw.get("classes", {})))
    if unknown:
        raise DatasetConfigError(path, "skip_images_with", f"not source classes: {sorted(unknown)}")
    return frozenset(str(v) for v in value)


def taxonomy_order(names: set[str], task: Task) -> list[str]:
    """Project classes in the taxonomy's fixed order, so class ids are stable."""
    if task == "parts":
        return [p.value for p in CarPart if p.value in names]
    from cdat.taxonomy import DAMAGE_CLASSES

    ordered = [*DAMAGE_TYPE_NAMES, *(damage_class_name(d, s) for d, s in DAMAGE_CLASSES)]
    return [n for n in ordered if n in names]


def load_training_config(path: Path, data_root: Path | None = None) -> TrainingConfig:
    """A training config: `task`, `datasets` (paths relative to this file), optional `classes`,
    `closeup_crops` ({dataset name: crops per train photo}, overriding the data set's) and
    `train_repeats` ({dataset name: times each train photo is written})."""
    path = Path(path)
    raw = _read_yaml(path)
    task = _task(raw, path)
    if "format" in raw:  # a single dataset config is also a valid training config
        datasets = [load_dataset_config(path, data_root)]
    else:
        refs = _require(raw, "datasets", list, path)
        datasets = [load_dataset_config(path.parent / str(ref), data_root) for ref in refs]
        datasets = _with_mix_overrides(raw, path, datasets)
    for ds in datasets:
        if ds.task != task:
            raise DatasetConfigError(path, "datasets", f"{ds.path} is a {ds.task} data set")
    mapped = {c for ds in datasets for c in ds.classes.values() if c is not None}
    # In a dataset config used directly, `classes` is the source mapping, not the model's.
    classes = None if "format" in raw else raw.get("classes")
    if classes is None:
        classes = taxonomy_order(mapped, task)
    else:
        for name in classes:
            try:
                check_project_class(str(name), task)
            except ValueError as exc:
                raise DatasetConfigError(path, "classes", str(exc)) from None
        listed = [str(c) for c in classes]
        missing = {detector_class(c, listed)[0] for c in mapped} - set(listed)
        if missing:
            raise DatasetConfigError(path, "classes", f"mapped but not listed: {sorted(missing)}")
    if not classes:
        raise DatasetConfigError(path, "classes", "no source class maps into the project")
    name = str(raw.get("name", path.stem))
    return TrainingConfig(path, name, task, datasets, [str(c) for c in classes])


def check_data_present(ds: DatasetConfig) -> None:
    if not ds.root.is_dir():
        raise DatasetError(
            f"data root for '{ds.name}' not found: {ds.root} (set CDAT_DATA_ROOT to the folder "
            "that holds the data sets)"
        )
    for split, src in ds.splits.items():
        for p in (src.images, src.annotations or src.labels):
            if p is not None and not p.exists():
                raise DatasetError(f"{ds.name} split '{split}': missing {p}")
