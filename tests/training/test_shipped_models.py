"""The models shipped in inference/models: registered, intact, loadable, documented."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from cdat.settings import SHIPPED_MODEL_DIR
from cdat.taxonomy import SEGMENTED_PARTS
from inference.registry import TASKS, Registry, sha256_of
from training.dataconfig import check_project_class

REGISTRY = Registry.load(SHIPPED_MODEL_DIR)
# Superseded models' files leave the tree (git history keeps them); promoted ones never do.
IN_TREE = [e for e in REGISTRY.entries if REGISTRY.path_of(e).is_file()]


@pytest.mark.parametrize("task", TASKS)
def test_each_task_has_a_promoted_model(task: str) -> None:
    entry = REGISTRY.promoted_entry(task)  # type: ignore[arg-type]
    assert entry.task == task
    if task == "parts":
        assert entry.classes == [p.value for p in SEGMENTED_PARTS]


def test_every_promoted_model_is_in_the_tree() -> None:
    # given the shipped registry; then each task's promoted model's file is here to serve
    assert set(REGISTRY.promoted) == set(TASKS)
    assert set(REGISTRY.promoted.values()) <= {e.id for e in IN_TREE}


@pytest.mark.parametrize("entry", IN_TREE, ids=lambda e: e.id)
def test_shipped_file_matches_registry_and_runs(entry) -> None:  # type: ignore[no-untyped-def]
    path = REGISTRY.path_of(entry)
    # the file is the one registered, small enough to ship
    assert sha256_of(path) == entry.sha256
    assert path.stat().st_size < 15 * 1024 * 1024
    # it loads in ONNX Runtime and has the registered input size and classes
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [entry.imgsz, entry.imgsz]
    outputs = session.run(None, {"images": np.zeros((2, 3, entry.imgsz, entry.imgsz),
                                                    np.float32)})  # fmt: skip
    if entry.task == "gate":  # one probability per photo that a vehicle is shown
        assert entry.classes == ["vehicle"] and outputs[0].shape == (2, 1)
        assert ((outputs[0] >= 0) & (outputs[0] <= 1)).all()
        return
    out0, protos = outputs[:2]
    assert out0.shape[1] == 4 + len(entry.classes) + protos.shape[1]
    assert all(check_project_class(c, entry.task) == c for c in entry.classes)


@pytest.mark.parametrize("entry", REGISTRY.entries, ids=lambda e: e.id)
def test_shipped_model_has_card_metrics_and_provenance(entry) -> None:  # type: ignore[no-untyped-def]
    card = (SHIPPED_MODEL_DIR / entry.card).read_text()
    assert "licence" in card.lower() and entry.licence
    if entry.task == "gate":
        made_by = ("python -m training.vehicle_gate", "python -m training.view_head")
        assert entry.command.startswith(made_by)
        assert entry.command in card and entry.metrics["split"] == "test"
        assert {"non_vehicle_refused", "closeups_refused", "served_conf"} <= entry.metrics.keys()
        assert "AGPL-3.0" in card and "attribution.csv" in card
        return
    assert entry.command.startswith("python -m training.train") and entry.command in card
    assert "mask_map50" in entry.metrics and entry.metrics["split"] == "test"
    if entry.task == "damage":
        assert "severity_accuracy" in entry.metrics
    else:
        assert "No explicit licence file" in card
