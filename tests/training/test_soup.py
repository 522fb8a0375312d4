"""training/soup.py: several checkpoints of one model averaged into one."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.errors import TrainingError
from training.soup import get_args_parser, main, mean_state

torch = pytest.importorskip("torch")


def test_the_mean_is_weighted_and_integer_buffers_are_the_firsts() -> None:
    # given two state dicts with a float weight and an integer batch count
    a = {"w": torch.tensor([0.0, 4.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([2.0, 8.0]), "n": torch.tensor(9)}
    # when they are averaged one to one, then three to one
    even, leaning = mean_state([a, b], [0.5, 0.5]), mean_state([a, b], [0.75, 0.25])
    # then each weight is the weighted mean; the count is the first's
    assert even["w"].tolist() == [1.0, 6.0] and int(even["n"]) == 3
    assert leaning["w"].tolist() == [0.5, 5.0]


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ({"w": torch.zeros(3)}, r"has shape \(3,\) against \(2,\)"),
        ({"v": torch.zeros(2)}, "not the same architecture"),
    ],
)
def test_checkpoints_of_other_shapes_are_refused(other: dict, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        mean_state([{"w": torch.zeros(2)}, other], [0.5, 0.5])


def _checkpoint(path: Path, seed: int, names: tuple[str, ...] = ("dent", "scratch")) -> Path:
    from training.ultra import load_ultralytics

    torch.manual_seed(seed)
    model = load_ultralytics().YOLO("yolo11n-seg.yaml", task="segment").model
    model.names = dict(enumerate(names))
    torch.save({"model": model.half(), "ema": None, "train_args": {"imgsz": 64}}, path)
    return path


def _run(*argv: str) -> int:
    return main(get_args_parser().parse_args(list(argv)))


def test_two_checkpoints_make_one_an_export_or_init_can_read(tmp_path: Path) -> None:
    # given two checkpoints of one model with other weights
    a, b = _checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)
    # when they are averaged
    assert _run("--weights", str(a), str(b), "--out", str(tmp_path / "soup.pt")) == 0
    # then the soup is an Ultralytics checkpoint whose weights are the mean, without optimizer
    soup = torch.load(tmp_path / "soup.pt", map_location="cpu", weights_only=False)
    assert soup["optimizer"] is None and soup["ema"] is None
    assert [s["share"] for s in soup["soup"]] == [0.5, 0.5]
    states = [torch.load(p, weights_only=False)["model"].float().state_dict() for p in (a, b)]
    key = next(k for k, v in states[0].items() if v.is_floating_point() and v.numel() > 8)
    expected = ((states[0][key].double() + states[1][key].double()) / 2).half()
    assert torch.equal(soup["model"].state_dict()[key], expected)
    assert not torch.equal(states[0][key].half(), expected)
    assert soup["model"].names == {0: "dent", 1: "scratch"}
    assert soup["train_args"] == {"imgsz": 64}
    # and Ultralytics (what `cdat export` and `--init` use) loads it as a model
    from training.ultra import load_ultralytics

    loaded = load_ultralytics().YOLO(str(tmp_path / "soup.pt"), task="segment")
    assert loaded.model.names == {0: "dent", 1: "scratch"}


def test_bad_inputs_are_one_error_and_write_nothing(tmp_path: Path) -> None:
    a = _checkpoint(tmp_path / "a.pt", 0)
    other_names = _checkpoint(tmp_path / "c.pt", 1, ("dent", "crack"))
    (tmp_path / "text.pt").write_text("not a checkpoint")
    out = tmp_path / "soup.pt"
    cases = [
        ((str(a),), "two or more"),
        ((str(a), str(tmp_path / "missing.pt")), "no such file"),
        ((str(a), str(tmp_path / "text.pt")), "not a PyTorch checkpoint"),
        ((str(a), str(other_names)), "name their classes differently"),
    ]
    for weights, message in cases:
        with pytest.raises(TrainingError, match=message):
            _run("--weights", *weights, "--out", str(out))
    for mix, message in ((["0.5"], "1 shares for 2"), (["0.7", "0.7"], "summing to 1")):
        with pytest.raises(TrainingError, match=message):
            _run("--weights", str(a), str(a), "--mix", *mix, "--out", str(out))
    assert not out.exists()
