"""Registry: register, verify, promote gate (refuse worse unless forced), CLI errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.errors import RegistryError
from inference.registry import ModelEntry, PromotionRefused, Registry, sha256_of
from training.cli import main as cli_main


def _entry(model_dir: Path, entry_id: str, task: str = "damage", **metrics: float) -> ModelEntry:
    path = model_dir / f"{entry_id}.onnx"
    path.write_bytes(entry_id.encode() * 10)
    return ModelEntry(entry_id, task, path.name, sha256_of(path), ["minor-dent"], 64,  # type: ignore[arg-type]
                      metrics=dict(metrics))  # fmt: skip


BASE = {"type_mask_map50": 0.5, "damage_recall_iou30": 0.6, "severity_balanced_accuracy": 0.7}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    reg = Registry.load(tmp_path)
    reg.register(_entry(tmp_path, "old", **BASE))
    reg.promote("old")
    reg.save()
    return Registry.load(tmp_path)


def test_better_candidate_is_promoted(registry: Registry) -> None:
    registry.register(_entry(registry.model_dir, "new", **{**BASE, "type_mask_map50": 0.6}))
    lines = registry.promote("new")
    assert registry.promoted["damage"] == "new"
    assert any("type_mask_map50" in line for line in lines)
    assert any("damage_recall_iou30" in line for line in lines)


@pytest.mark.parametrize(
    "metrics",
    [{**BASE, "type_mask_map50": 0.4}, {**BASE, "damage_recall_iou30": 0.5},
     {**BASE, "severity_balanced_accuracy": 0.6}, {"type_mask_map50": 0.9}],
)  # fmt: skip
def test_worse_candidate_is_refused_unless_forced(registry: Registry, metrics: dict) -> None:
    registry.register(_entry(registry.model_dir, "new", **metrics))
    with pytest.raises(PromotionRefused, match="--force"):
        registry.promote("new")
    assert registry.promoted["damage"] == "old"
    registry.promote("new", force=True)
    assert registry.promoted["damage"] == "new"


def test_same_split_baseline_wins_over_stored_metrics(registry: Registry) -> None:
    # given a candidate whose report measured the promoted model on its own split
    entry = _entry(registry.model_dir, "new", **{**BASE, "type_mask_map50": 0.45})
    entry.metrics["baseline"] = {"id": "old", **BASE, "type_mask_map50": 0.40}
    registry.register(entry)
    # when promoted, then the same-split numbers decide (0.45 > 0.40)
    lines = registry.promote("new")
    assert registry.promoted["damage"] == "new"
    assert "same split" in lines[0]


def test_tampered_file_fails_verification(registry: Registry) -> None:
    entry = registry.get("old")
    registry.path_of(entry).write_bytes(b"changed")
    with pytest.raises(RegistryError, match="SHA-256"):
        registry.verify(entry)


def test_duplicate_id_and_unknown_task_are_refused(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="already registered"):
        registry.register(_entry(registry.model_dir, "old"))
    with pytest.raises(RegistryError, match="unknown task"):
        registry.register(_entry(registry.model_dir, "x", task="wheels"))


def test_cli_refusal_is_one_error_line(registry: Registry, capsys: pytest.CaptureFixture) -> None:
    registry.register(_entry(registry.model_dir, "new", type_mask_map50=0.1))
    registry.save()
    code = cli_main(["models", "--model-dir", str(registry.model_dir), "promote", "new"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: refusing to promote new over old")
    assert Registry.load(registry.model_dir).promoted["damage"] == "old"


def test_cli_list_marks_promoted(registry: Registry, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["models", "--model-dir", str(registry.model_dir), "list"]) == 0
    out = capsys.readouterr().out
    assert "* old" in out


def test_cli_bad_config_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: damage\nformat: coco\n")
    code = cli_main(["convert", "--config", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "field 'root'" in err


def test_cli_resume_without_a_run_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = Path(__file__).parents[2] / "datasets" / "damage.yaml"
    code = cli_main(["train", "--config", str(config), "--resume", "--project", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nothing to resume" in err
