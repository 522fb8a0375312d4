"""`cdat assess` on local files reads the same EXIF as the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_api.cli import main
from tests import images


def test_assess_reads_the_capture_time_the_photo_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a photo whose EXIF says it was taken on the loss date, and one without a time
    monkeypatch.setenv("CDAT_ANALYZER", "tests.fakes:build_fake_analyzer")
    monkeypatch.chdir(tmp_path)
    dated, bare = tmp_path / "dated.jpg", tmp_path / "bare.jpg"
    dated.write_bytes(images.jpeg(320, 240, exif={0x0132: "2026:11:20 09:30:00"}))
    bare.write_bytes(images.jpeg(320, 240, color=(20, 30, 40)))
    # when they are assessed locally
    code = main(["assess", str(dated), str(bare), "--loss-date", "2026-11-20", "--json"])
    # then only the photo without a time is reported as having none
    assert code == 0
    signals = json.loads(capsys.readouterr().out)["fraud_signals"]
    missing = [s["photo_id"] for s in signals if s["code"] == "capture_time_missing"]
    assert missing == ["2:bare.jpg"]


def test_an_unreadable_setting_is_one_error_line_each_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given two settings the typed Settings cannot read
    monkeypatch.setenv("CDAT_DAMAGE_WHOLE_CAR_RULE", '{"min_parts": 0}')
    monkeypatch.setenv("CDAT_DAMAGE_CROP_LOOK", "maybe")
    photo = tmp_path / "p.jpg"
    photo.write_bytes(images.jpeg(320, 240))
    # when a command reads them
    code = main(["assess", str(photo)])
    # then it stops with a usage error, one line per setting, named as it is set, no traceback
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert sorted(err) == [
        "cdat: error: CDAT_DAMAGE_CROP_LOOK: Input should be a valid boolean, unable to "
        "interpret input",
        "cdat: error: CDAT_DAMAGE_WHOLE_CAR_RULE: Value error, min_parts 0: need at least 1",
    ]
