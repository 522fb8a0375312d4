"""The models shipped in inference/models, on real test photos (skipped until they exist)."""

from __future__ import annotations

import pytest

from cdat.analysis import PhotoInput
from cdat.merge import merge_findings
from cdat.settings import Settings
from inference.loading import build_analyzer
from inference.overlay import render_overlay
from inference.readiness import readiness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped():
    settings = Settings(onnx_threads=2)
    state = readiness(settings)
    if not state.ready:
        pytest.skip(f"shipped models not installed: {state.missing}")
    return build_analyzer(settings)


def test_the_crop_stages_take_the_whole_budget_and_leave_no_thread_spinning(shipped) -> None:
    # given the shipped analyzer on two threads, its models side by side on one each
    verifier, family = shipped.verifier, shipped.family
    assert verifier is not None and verifier.closeup is not None and family is not None
    # then every crop stage, which runs after both models, runs on both threads, and its
    # pool does not spin on after a run, in the way of the next photo's models
    # (a stage stored as a head runs its cut backbone there; its perceptron stays on one)
    nets = (verifier.net, verifier.closeup.net, family.net)
    for session in (net.head if net.body is None else net.body for net in nets):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_shipped_models_analyse_real_photos(shipped, data_root):
    files = sorted((data_root / "car-parts/testset/JPEGImages").glob("*.jpg"))[:4]
    files += sorted((data_root / "damage-severity/images/test").glob("*.jpg"))[:4]
    if len(files) < 8:
        pytest.skip("real test photos not available")
    photos = [PhotoInput(f.stem, f.read_bytes()) for f in files]
    # when the shipped models analyse real photos
    results = shipped.analyze(photos)
    # then every photo is analysed, geometry stays inside the photo, and parts are seen
    assert [r.photo_id for r in results] == [p.photo_id for p in photos]
    assert sum(len(r.parts) for r in results[:4]) > 0, "no car part found on whole-car photos"
    for result in results:
        for instance in (*result.damages, *result.parts):
            assert 0 <= instance.box.x1 <= instance.box.x2 <= result.width
            assert all(
                0 <= x <= result.width and 0 <= y <= result.height for x, y in instance.polygon
            )
    merge_findings(results)
    overlay = render_overlay(photos[0].data, results[0])
    assert overlay[:2] == b"\xff\xd8"
