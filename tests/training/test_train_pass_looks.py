"""A train pass records the second looks it was made with (training/train_pass.py): a run
with other looks is refused the cached pass instead of learning from detections it never
made, and the cache stays as it was."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from cdat.findings import PhotoAnalysis
from training import claim_rules
from training.errors import TrainingError
from training.train_pass import (
    Detector,
    TrainPhoto,
    analyzer_of,
    cached_pass,
    detector_of,
    train_pass,
)

PHOTO = TrainPhoto("car-parts", Path("c/train0.jpg"), [])


def saved_pass(tmp_path: Path, **looks: Any) -> Path:
    analysis = PhotoAnalysis(photo_id="train0.jpg", width=64, height=48)
    state = {"conf": 0.02, "detector": "x", "photos": {str(PHOTO.path): analysis}, **looks}
    cache = tmp_path / "pass.pkl"
    cache.write_bytes(pickle.dumps(state))
    return cache


def test_a_pass_made_with_the_middle_look_is_refused_to_a_run_without_it(
    tmp_path: Path,
) -> None:
    # given a pass made with the middle look
    cache = saved_pass(tmp_path, second_looks=("middle",))
    before = cache.read_bytes()
    # when a run without the look reads it, then it is one error naming both, and the cache
    # is as it was
    with pytest.raises(
        TrainingError, match="made with second looks middle, and this run takes none"
    ):
        cached_pass([PHOTO], 0.02, cache, Detector("x"))
    assert cache.read_bytes() == before


def test_a_pass_made_with_one_look_is_refused_to_a_run_with_the_middle_look(
    tmp_path: Path,
) -> None:
    cache = saved_pass(tmp_path, second_looks=())
    with pytest.raises(TrainingError, match="looks none, and this run takes middle"):
        cached_pass([PHOTO], 0.02, cache, Detector("x", second_looks=("middle",)))


def test_a_pass_with_the_same_looks_is_read(tmp_path: Path) -> None:
    cache = saved_pass(tmp_path, second_looks=("middle",))
    kept = cached_pass([PHOTO], 0.02, cache, Detector("x", second_looks=("middle",)))
    assert kept is not None and list(kept) == [str(PHOTO.path)]


def test_a_pass_saved_before_the_looks_were_recorded_is_read_as_before(tmp_path: Path) -> None:
    cache = saved_pass(tmp_path)
    for looks in ((), ("middle",)):
        kept = cached_pass([PHOTO], 0.02, cache, Detector("x", second_looks=looks))
        assert kept is not None and list(kept) == [str(PHOTO.path)]


def test_the_detector_takes_the_looks_the_operator_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    # given the shipped registry, whose promoted damage model is served with one look
    monkeypatch.delenv("CDAT_DAMAGE_FLIP_TTA", raising=False)
    monkeypatch.delenv("CDAT_DAMAGE_CROP_LOOK", raising=False)
    assert detector_of(None, 0.02).second_looks == ()
    # when the operator asks for both second looks, then the pass's detector takes them
    monkeypatch.setenv("CDAT_DAMAGE_CROP_LOOK", "true")
    monkeypatch.setenv("CDAT_DAMAGE_FLIP_TTA", "true")
    assert detector_of(None, 0.02).second_looks == ("mirrored", "middle")


def test_a_new_pass_is_saved_with_its_looks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an analyzer that answers every photo with an empty analysis
    class Answering:
        def analyze(self, photos: Any) -> list[PhotoAnalysis]:
            return [PhotoAnalysis(photo_id=p.photo_id, width=64, height=48) for p in photos]

    monkeypatch.setattr(claim_rules, "pass_analyzer", lambda *given: Answering())
    photo_file = tmp_path / "train0.jpg"
    photo_file.write_bytes(b"read as bytes only")
    photo = TrainPhoto("car-parts", photo_file, [])
    cache = tmp_path / "pass.pkl"
    # when a pass is made by a detector taking the middle look
    train_pass([photo], 0.02, cache, Detector("x", second_looks=("middle",)))
    # then the cache says so, and a run without the look is refused it
    assert pickle.loads(cache.read_bytes())["second_looks"] == ("middle",)
    with pytest.raises(TrainingError, match="name another --cache"):
        cached_pass([photo], 0.02, cache, Detector("x"))


def test_a_cache_whose_looks_cannot_be_read_is_one_error(tmp_path: Path) -> None:
    # given a cache whose looks are no list of names
    cache = saved_pass(tmp_path, second_looks=1)
    before = cache.read_bytes()
    # when it is read, then it is the cache's one error, and the cache is as it was
    with pytest.raises(TrainingError, match="not a train pass this script saved"):
        cached_pass([PHOTO], 0.02, cache, Detector("x"))
    assert cache.read_bytes() == before


def test_a_pass_made_without_the_zoomed_out_look_is_refused_to_a_run_with_it(
    tmp_path: Path,
) -> None:
    # given a pass made with no second look
    cache = saved_pass(tmp_path, second_looks=())
    before = cache.read_bytes()
    # when a run taking the zoomed-out look reads it, then it is refused, the cache unchanged
    zoomed = Detector("x", second_looks=("zoomed-out under 0.5",), zoom_look_view_below=0.5)
    with pytest.raises(TrainingError, match=r"this run takes zoomed-out under 0\.5"):
        cached_pass([PHOTO], 0.02, cache, zoomed)
    assert cache.read_bytes() == before


def test_the_detector_takes_the_zoomed_out_look_where_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the shipped registry, whose promoted damage entry takes the zoomed-out look only
    # where its verified first look finds damage (after the verdict a pass is made for)
    monkeypatch.delenv("CDAT_DAMAGE_FLIP_TTA", raising=False)
    monkeypatch.delenv("CDAT_DAMAGE_CROP_LOOK", raising=False)
    plain = detector_of(None, 0.02)
    # when a pass asks for the look under 0.5, then its detector takes it and says so
    zoomed = detector_of(None, 0.02, 0.5)
    assert (plain.second_looks, plain.zoom_look_view_below) == ((), None)
    assert (zoomed.second_looks, zoomed.zoom_look_view_below) == (("zoomed-out under 0.5",), 0.5)
    assert zoomed.sha256 == plain.sha256


def test_the_pass_of_a_detector_with_the_zoomed_out_look_takes_it_on_close_ups() -> None:
    # given the promoted damage model as a pass's detector, with and without the look (its
    # entry's look, taken only where damage is found, is not a pass's)
    plain = detector_of(None, 0.02)
    # when the analyzers of their passes are built
    with_look = analyzer_of(Detector(plain.sha256, zoom_look_view_below=0.5), 0.02)
    without = analyzer_of(plain, 0.02)
    # then only the first looks again from further away, under the bar asked
    assert with_look.damage.closeup_runtime is not None
    assert with_look.damage.entry.zoom_look_view_below == 0.5
    assert without.damage.closeup_runtime is None
