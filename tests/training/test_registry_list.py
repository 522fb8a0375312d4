"""`cdat models list` shows what the promotion gate compares; `promote --dry-run` changes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inference.registry import ModelEntry, Registry, sha256_of
from training.cli import main as cli_main


def _entry(model_dir: Path, entry_id: str, task: str, **metrics: Any) -> ModelEntry:
    path = model_dir / f"{entry_id}.onnx"
    path.write_bytes(entry_id.encode() * 10)
    return ModelEntry(entry_id, task, path.name, sha256_of(path), ["x"], 64,  # type: ignore[arg-type]
                      metrics=dict(metrics))  # fmt: skip


def _claims(cpd: float, intact: float) -> dict[str, Any]:
    recall = {"car-parts-damage": cpd, "damaged-parts": 0.45, "damage-severity": 0.23}
    return {
        "damage_recall_iou30": recall,
        "intact_photos_with_damage": intact,
        "intact_closeups_with_damage": 0.4,
    }


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry.load(tmp_path)
    served = {"split": "test", "severity_balanced_accuracy": 0.7, "claims": _claims(0.6, 0.19)}
    reg.register(_entry(tmp_path, "served", "damage", **served))
    reg.register(_entry(tmp_path, "early", "damage", split="test", mask_map50=0.3))
    reg.register(_entry(tmp_path, "parts-a", "parts", mask_map50=0.88, closeup_part_accuracy=0.7))
    reg.register(_entry(tmp_path, "gate-a", "gate", non_vehicle_refused=0.97))
    for entry_id in ("served", "parts-a", "gate-a"):
        reg.promote(entry_id)
    reg.save()
    return Registry.load(tmp_path)


def _list(registry: Registry, capsys: pytest.CaptureFixture, *extra: str) -> list[str]:
    assert cli_main(["models", "--model-dir", str(registry.model_dir), "list", *extra]) == 0
    out: str = capsys.readouterr().out
    return out.splitlines()


def _row(lines: list[str], entry_id: str) -> list[str]:
    return next(line for line in lines if line[2:].startswith(entry_id + " ")).split()


def test_each_task_lists_the_figures_its_promotion_gate_compares(
    registry: Registry, capsys: pytest.CaptureFixture
) -> None:
    # given a damage, a part and a gate model, each promoted, and an earlier damage model
    # when the registry is listed
    lines = _list(registry, capsys)
    # then each task's table is headed by its gate metrics, lower-is-better ones named
    damage_header = lines[lines.index(next(x for x in lines if x.startswith("damage:"))) + 1]
    assert "found cpd" in damage_header and "intact cars" in damage_header
    assert any(x.startswith("damage:") and "lower is better: intact cars" in x for x in lines)
    assert any("close-up part acc" in x for x in lines)
    assert any("no vehicle refused" in x for x in lines)
    # and each row gives its figures, "-" where the entry was not measured on one
    assert _row(lines, "served")[:9] == ["*", "served", "test", "0.600", "0.450", "0.230",
                                         "0.190", "0.400", "0.700"]  # fmt: skip
    assert _row(lines, "early")[:8] == ["early", "test", "-", "-", "-", "-", "-", "-"]
    assert _row(lines, "parts-a")[:6] == ["*", "parts-a", "-", "0.880", "0.700", "-"]
    assert lines[-1].startswith("cpd car-parts-damage; dp damaged-parts; ds damage-severity")


def test_one_tasks_models_are_listed_alone(
    registry: Registry, capsys: pytest.CaptureFixture
) -> None:
    lines = _list(registry, capsys, "--task", "gate")
    assert lines[0].startswith("gate:")
    assert not any("served" in x or "parts-a" in x for x in lines)
    assert _row(lines, "gate-a")[:4] == ["*", "gate-a", "-", "0.970"]


def test_a_task_with_no_models_says_so(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    Registry.load(tmp_path).save()
    assert cli_main(["models", "--model-dir", str(tmp_path), "list", "--task", "parts"]) == 0
    assert capsys.readouterr().out.startswith("no parts models registered in ")


def registry_file(registry: Registry) -> bytes:
    return (registry.model_dir / "registry.json").read_bytes()


def _candidate(registry: Registry, entry_id: str, claims: dict[str, Any]) -> None:
    """A new damage entry with `claims`, registered and saved."""
    figures = {"severity_balanced_accuracy": 0.8, "claims": claims}
    registry.register(_entry(registry.model_dir, entry_id, "damage", **figures))
    registry.save()


def _dry_run(registry: Registry, entry_id: str) -> int:
    command = ["models", "--model-dir", str(registry.model_dir), "promote", entry_id, "--dry-run"]
    code: int = cli_main(command)
    return code


def test_a_dry_run_says_a_better_model_would_be_promoted_and_changes_nothing(
    registry: Registry, capsys: pytest.CaptureFixture
) -> None:
    # given a candidate better on every gate figure
    _candidate(registry, "better", _claims(0.7, 0.1))
    before = registry_file(registry)
    # when its promotion is tried dry
    code = _dry_run(registry, "better")
    # then it would be promoted, and the registry is as it was
    out = capsys.readouterr().out
    assert code == 0
    assert "claims.intact_photos_with_damage: 0.19 (served, stored metrics) -> 0.1" in out
    assert "dry run: better would be promoted" in out
    assert registry_file(registry) == before
    assert Registry.load(registry.model_dir).promoted["damage"] == "served"


def test_a_dry_run_of_a_worse_model_is_one_error_line_and_changes_nothing(
    registry: Registry, capsys: pytest.CaptureFixture
) -> None:
    _candidate(registry, "worse", _claims(0.5, 0.1))
    before = registry_file(registry)
    code = _dry_run(registry, "worse")
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1
    assert err.startswith("error: dry run, nothing changed: refusing to promote worse over served")
    assert registry_file(registry) == before
