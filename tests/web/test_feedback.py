"""Adjuster corrections exported as a YOLO segmentation data set that training can read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from cdat.settings import Settings
from cdat.taxonomy import DamageType
from mobile_api.cli import main
from mobile_api.cli.feedback import CLASS_NAMES, FeedbackError, export
from mobile_api.runtime import Runtime
from tests.conftest import REPO_ROOT, make_settings
from tests.web.conftest import Flagged, csrf_of, open_flagged_claim, sign_in
from training.convert import read_dataset
from training.dataconfig import load_dataset_config, load_training_config


def correct_first_photo(web: TestClient, flagged: Flagged) -> None:
    base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
    csrf = csrf_of(web.get(base).text)
    edited = web.post(
        f"{base}/damages/{photo}/0/edit",
        data={"csrf_token": csrf, "damage_type": "scratch", "severity": "moderate", "part": ""},
    )
    assert edited.status_code == 200  # followed the redirect back to the claim page
    added = web.post(
        f"{base}/damages/{photo}/add",
        data={
            "csrf_token": csrf,
            "damage_type": "lamp_broken",
            "severity": "severe",
            "part": "",
            "shape": "[[32, 24], [160, 24], [96, 120]]",
        },
    )
    assert added.status_code == 200


def test_export_writes_reviewed_photos_as_yolo_polygons_with_card_and_configs(
    web: TestClient, runtime: Runtime, adjuster: str, tmp_path: Path
) -> None:
    # given one claim the adjuster corrected and one nobody reviewed
    reviewed = open_flagged_claim(web, (200, 200, 200))
    untouched = open_flagged_claim(web, (30, 30, 30))
    sign_in(web)
    correct_first_photo(web, reviewed)
    # when the feedback is exported
    out = tmp_path / "export"
    summary = export(runtime, out)
    # then only the reviewed photo is there, with the adjuster's labels as polygons
    images = sorted(p.relative_to(out) for p in (out / "images").rglob("*.jpg"))
    assert len(images) == 1 and summary.total_images == 1
    assert reviewed.claim_id in images[0].name and untouched.claim_id not in images[0].name
    label = out / "labels" / images[0].parent.name / (Path(images[0].name).stem + ".txt")
    lines = [line.split() for line in label.read_text().splitlines()]
    assert [CLASS_NAMES[int(line[0])] for line in lines] == [
        "moderate-scratch",
        "severe-lamp_broken",
    ]
    # the drawn triangle, normalised by the 320x240 photo
    assert [float(v) for v in lines[1][1:]] == [0.1, 0.1, 0.5, 0.1, 0.3, 0.5]
    assert (out / images[0]).read_bytes() == web.get(
        f"/adjuster/claims/{reviewed.claim_id}/photos/{reviewed.photo_ids[0]}"
    ).content
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["names"][int(lines[0][0])] == "moderate-scratch" and data["train"] == "images/train"
    card = (out / "README.md").read_text()
    assert "Insurer's own" in card and "1 images" in card and "| `severe-lamp_broken` | 1 |" in card
    # and the training code reads it, as its own config and next to the public data set
    ds = load_dataset_config(out / "dataset.yaml")
    records = read_dataset(ds)
    assert [sorted(name for name, _ in r.instances) for r in records] == [
        ["moderate-scratch", "severe-lamp_broken"]
    ]
    (tmp_path / "data").mkdir()
    (out).rename(tmp_path / "data" / "cdat-feedback")
    combined = load_training_config(
        REPO_ROOT / "datasets" / "damage-with-feedback.yaml", data_root=tmp_path / "data"
    )
    assert [d.name for d in combined.datasets] == [
        "damage-severity",
        "damaged-parts",
        "cdat-feedback",
    ]
    # the detector learns the types adjusters label; their severities stay beside each label
    assert set(combined.classes) == {d.value for d in DamageType}
    feedback = combined.datasets[2]
    assert len(read_dataset(feedback)) == 1


def test_export_refuses_when_nothing_was_reviewed_or_the_folder_is_someone_elses(
    web: TestClient, runtime: Runtime, adjuster: str, tmp_path: Path
) -> None:
    flagged = open_flagged_claim(web)
    with pytest.raises(FeedbackError, match="no reviewed photos"):
        export(runtime, tmp_path / "empty")
    sign_in(web)
    correct_first_photo(web, flagged)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(FeedbackError, match="not empty"):
        export(runtime, busy)
    with pytest.raises(FeedbackError, match="something other than a feedback export"):
        export(runtime, busy, overwrite=True)
    assert (busy / "notes.txt").read_text() == "mine"


def test_cli_exports_and_reports_errors_in_one_line(
    web: TestClient,
    adjuster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CDAT_DATA_DIR", str(tmp_path))  # the test app's database and blobs
    monkeypatch.setenv("CDAT_ENVIRONMENT", "test")
    assert main(["feedback", "export", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().startswith("cdat: error: no reviewed photos")
    flagged = open_flagged_claim(web)
    sign_in(web)
    correct_first_photo(web, flagged)
    assert main(["feedback", "export", str(tmp_path / "out")]) == 0
    assert "exported 1 images" in capsys.readouterr().out
    assert main(["feedback", "export", str(tmp_path / "out")]) == 2
    assert main(["feedback", "export", str(tmp_path / "out"), "--overwrite"]) == 0


def test_export_names_each_outline_by_its_parts_family_for_the_stage_to_learn(
    web: TestClient, runtime: Runtime, adjuster: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from mobile_api.cli.feedback import FAMILY_NAMES
    from training import part_family

    # given an adjuster moved the model's dent onto the front right fender, and drew a
    # scratch they left on no part
    reviewed = open_flagged_claim(web, (200, 200, 200))
    sign_in(web)
    base, photo = f"/adjuster/claims/{reviewed.claim_id}", reviewed.photo_ids[0]
    csrf = csrf_of(web.get(base).text)
    for path, data in [
        ("0/edit", {"damage_type": "dent", "severity": "moderate", "part": "front_right_fender"}),
        ("add", {"damage_type": "scratch", "severity": "minor", "part": "",
                 "shape": "[[32, 24], [160, 24], [96, 120]]"}),
    ]:  # fmt: skip
        assert web.post(
            f"{base}/damages/{photo}/{path}", data={"csrf_token": csrf, **data}
        ).is_success
    # when the feedback is exported
    out = tmp_path / "export"
    summary = export(runtime, out)
    # then the fender outline is a family label, and the scratch on no part names none
    (image,) = (out / "images").rglob("*.jpg")
    split = image.parent.name
    family_label = out / "family-labels" / split / (image.stem + ".txt")
    lines = family_label.read_text().splitlines()
    assert [FAMILY_NAMES[int(line.split()[0])] for line in lines] == ["fender"]
    assert summary.families == {"fender": 1}
    assert "| `fender` | 1 |" in (out / "README.md").read_text()
    # and the part-family stage's training reads the export as one more part-named source
    monkeypatch.setattr(part_family, "SOURCES", ())
    got = part_family.regions(split, 0, None, [out / "families.yaml"])
    assert [(r.family, r.source) for r in got] == [
        (part_family.PartFamily.FENDER, "cdat-feedback-families")
    ]


def test_the_shipped_family_config_names_what_the_export_writes() -> None:
    from mobile_api.cli.feedback import FAMILY_NAMES
    from training.closeup import part_families

    config = REPO_ROOT / "datasets" / "cdat-feedback-families.yaml"
    raw = yaml.safe_load(config.read_text())
    assert raw["names"] == FAMILY_NAMES
    assert {k: v.value for k, v in part_families(config).items()} == {n: n for n in FAMILY_NAMES}
    assert raw["splits"]["train"]["labels"] == "family-labels/train"


class TestRepeatsOfADamage:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return make_settings(tmp_path, analyzer="tests.fakes:build_outlined_again_fake_analyzer")

    def test_are_not_exported_as_labels_of_their_own(
        self, web: TestClient, runtime: Runtime, adjuster: str, tmp_path: Path
    ) -> None:
        # given a claim whose photo's dent is also outlined and named again (folded away in
        # the workspace), and an adjuster who confirmed the dent
        flagged = open_flagged_claim(web, (200, 200, 200))
        sign_in(web)
        base, photo = f"/adjuster/claims/{flagged.claim_id}", flagged.photo_ids[0]
        csrf = csrf_of(web.get(base).text)
        assert web.post(f"{base}/damages/{photo}/0/confirm", data={"csrf_token": csrf}).is_success
        # when the feedback is exported
        out = tmp_path / "export"
        export(runtime, out)
        # then the dent is one label, not three overlapping ones of two types
        (label,) = (out / "labels").rglob("*.txt")
        lines = [line.split() for line in label.read_text().splitlines()]
        assert [CLASS_NAMES[int(line[0])] for line in lines] == ["severe-dent"]
