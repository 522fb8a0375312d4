"""The one prepared GPU command, run whole on the CPU on a tiny pack.

A lent GPU gives 15 minutes, rarely; a script that fails there wastes them. This runs
`training/gpu_session.sh` as a lent machine would (from a repository root holding a packed
data set and the promoted models) with `DEVICE=cpu`, and checks what it brings back.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from training import pack as pack_cli

from .conftest import coco_config, make_coco, write_yaml

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]


def _lent_machine_tree(tmp_path: Path) -> Path:
    """A repository root like the one the device tool copies: the code and models, and
    a damage pack in two shards made from a tiny generated data set standing in for
    damage-claims.yaml."""
    root = tmp_path / "repo"
    root.mkdir()
    for package in ("cdat", "inference", "training"):
        (root / package).symlink_to(REPO / package)
    coco = make_coco(tmp_path / "coco", {"train": 6, "val": 2, "test": 2})
    (root / "datasets").mkdir()
    write_yaml(root / "datasets" / "damage-claims.yaml", coco_config(coco, name="damage"))
    args = ["--config", "datasets/damage-claims.yaml", "--out", "runs/pack/damage"]
    args += ["--imgsz", "64", "--shards", "2"]
    args += ["--data-dir", str(tmp_path / "converted")]
    cwd = Path.cwd()
    os.chdir(root)
    try:
        assert pack_cli.main(pack_cli.get_args_parser().parse_args(args)) == 0
    finally:
        os.chdir(cwd)
    return root


def _promoted_damage_pt() -> str:
    registry = json.loads((REPO / "inference" / "models" / "registry.json").read_text())
    entry = {e["id"]: e for e in registry["entries"]}[registry["promoted"]["damage"]]
    return Path(entry["file"]).with_suffix(".pt").name


def _run_session(root: Path, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    python_bin = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PATH": f"{python_bin}:{os.environ.get('PATH', '')}",
        "OUT": str(out),
        "DEVICE": "cpu",
        "MINUTES": "0.05",
        "DAMAGE_IMGSZ": "64",
        **env,
    }
    return subprocess.run(
        ["bash", str(root / "training" / "gpu_session.sh")],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_gpu_session_trains_warm_and_records_photos_per_second(tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    # given a lent machine's tree with only the damage pack on it, which travelled as one
    # archive (the device tool refuses a pack's thousands of files as a folder)
    root = _lent_machine_tree(tmp_path)
    shards = ["runs/pack/damage", "runs/pack/damage-2"]
    subprocess.run(["tar", "czf", "runs/pack/damage.tar.gz", *shards], cwd=root, check=True)
    for shard in shards:
        shutil.rmtree(root / shard)
    out = tmp_path / "out"
    # when the session script runs (on the CPU, for a few seconds of training)
    done = _run_session(root, out)
    # then it succeeds and brings back the checkpoint and the run record (export runs here)
    log = (out / "damage-train.log").read_text() if (out / "damage-train.log").exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + log[-3000:]
    assert (out / "damage-gpu.pt").stat().st_size > 0
    assert not (out / "damage-gpu.onnx").exists()
    assert not (out / "parts-gpu.pt").exists()  # no parts pack travelled, so none trained
    # and the run started from the promoted damage model, on the device asked for
    run = json.loads((out / "damage-cdat_run.json").read_text())
    assert run["init"]["path"] == f"inference/models/{_promoted_damage_pt()}"
    assert run["hyperparameters"]["device"] == "cpu"
    assert run["hyperparameters"]["imgsz"] == 64
    # by the damage recipe the script's header gives, unasked (mosaic lost close-ups)
    assert run["hyperparameters"]["freeze"] == 10 and run["hyperparameters"]["mosaic"] == 0.0
    assert run["hyperparameters"]["optimizer"] == "AdamW"
    # and it names the config the pack was made from, not the one a pack used to be
    assert run["config"] == "datasets/damage-claims.yaml"
    # and the speed record counts the epochs it trained over both unpacked shards' photos
    speed = json.loads((out / "damage-speed.json").read_text())
    assert speed["epochs"] >= 1 and speed["train_images"] == 12
    assert speed["photos_per_second"] > 0


def test_gpu_session_trains_on_the_shards_that_reached_the_machine(tmp_path: Path) -> None:
    pytest.importorskip("ultralytics")
    # given a lent machine that went cold before the second shard's call
    root = _lent_machine_tree(tmp_path)
    shutil.rmtree(root / "runs" / "pack" / "damage-2")
    out = tmp_path / "out"
    # when the session script runs, asked for the served model's recipe
    recipe = "--freeze 10 --optimizer AdamW --lr0 0.0003 --cos-lr --mosaic 0 --save-period 1"
    done = _run_session(root, out, DAMAGE_TRAIN_ARGS=recipe)
    # then it trains on the first shard alone and says which shard it went without
    assert done.returncode == 0, done.stderr[-3000:]
    assert "damage-2/images/train did not reach this machine" in done.stderr
    speed = json.loads((out / "damage-speed.json").read_text())
    first = len(list((root / "runs" / "pack" / "damage" / "images" / "train").iterdir()))
    assert 0 < first < 12 and speed["train_images"] == first
    # and by the recipe asked for
    hyperparameters = json.loads((out / "damage-cdat_run.json").read_text())["hyperparameters"]
    assert hyperparameters["freeze"] == 10 and hyperparameters["optimizer"] == "AdamW"
    assert hyperparameters["lr0"] == 0.0003 and hyperparameters["cos_lr"] is True
    assert hyperparameters["mosaic"] == 0.0
    # and each epoch's checkpoint comes back beside best.pt, to be chosen on the claim pass
    assert hyperparameters["save_period"] == 1
    kept = sorted(out.glob("damage-gpu-epoch*.pt"))
    assert kept, sorted(p.name for p in out.iterdir())
    # without its optimizer state, which would not fit a call's 64 MiB four times over
    torch = pytest.importorskip("torch")
    checkpoint = torch.load(kept[0], map_location="cpu", weights_only=False)
    assert checkpoint["optimizer"] is None and checkpoint["model"] is not None


def test_gpu_session_without_a_pack_says_what_to_carry(tmp_path: Path) -> None:
    # given a lent machine's tree with no pack on it
    root = tmp_path / "repo"
    root.mkdir()
    (root / "training").symlink_to(REPO / "training")
    # when the session script runs; then it stops at once and names what to carry
    done = _run_session(root, tmp_path / "out")
    assert done.returncode == 2
    assert "carry runs/pack/damage or runs/pack/parts" in done.stderr


CALL_LIMIT = 64 * 2**20
"""What one device call may carry: the tracked tree and the call's carried paths together."""
SHARD = 10 * 2**20
"""Room for one damage-claims pack shard (at most 9.5 MiB each in six: gpu_session.sh)."""
HELD_OUT = "inference/models/*.onnx"
"""The ONNX models, which a lent GPU's session never reads (it starts from the .pt files):
each call holds them out of the tree, as the one call that ran (2026-12-04) did
(gpu_session.sh says how)."""


def test_the_tracked_tree_leaves_each_call_room_for_a_shard() -> None:
    # given the files this checkout tracks, less the ONNX models a call holds out
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: what travels is a checkout's tracked tree")
    names = [name for name in listed.stdout.decode().split("\0") if name]
    files = [REPO / name for name in names if not fnmatch.fnmatch(name, HELD_OUT)]
    assert len(files) < len(names), f"no tracked file matches {HELD_OUT}: is it still right?"
    sizes = sorted(((p.stat().st_size, p) for p in files if p.is_file()), reverse=True)
    # then, with a shard carried beside them, a call stays under the limit
    largest = ", ".join(f"{p.relative_to(REPO)} {s / 2**20:.1f} MiB" for s, p in sizes[:5])
    total = sum(s for s, _ in sizes)
    assert total + SHARD <= CALL_LIMIT, f"tree {total / 2**20:.1f} MiB; largest: {largest}"
