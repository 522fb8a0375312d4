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


def test_the_table_keeps_its_columns_for_the_longest_part_name() -> None:
    from cdat.assessment import Assessment
    from cdat.catalog import ClassDecision, VehicleClass
    from cdat.estimate import Pricing, build_estimate
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.merge import merge_findings
    from cdat.pipeline import load_policy
    from cdat.settings import Settings
    from cdat.taxonomy import CarPart, DamageType, Severity
    from mobile_api.cli.local import render_table

    # given a claim whose one damage lies on the part with the longest name
    dent = DamageInstance(
        DamageType.DENT, Severity.MODERATE, 0.8, Box(10, 10, 60, 60),
        part=CarPart.BACK_RIGHT_QUARTER_PANEL,
    )  # fmt: skip
    photo = PhotoAnalysis("1:p.jpg", 640, 480, damages=(dent,))
    findings = merge_findings([photo])
    policy = load_policy(Settings())
    pricing = Pricing(
        policy.catalog, policy.rules, policy.region, ClassDecision(VehicleClass.MIDSIZE, "t")
    )
    assessment = Assessment((photo,), findings, {}, estimate=build_estimate(findings, pricing))
    # when it is printed as a table
    lines = render_table(assessment).splitlines()
    # then the part is named whole, a space before the next column, in the photo and estimate
    finding_line = next(line for line in lines if "conf 0.80" in line)
    assert "back_right_quarter_panel conf" in finding_line
    priced = [line for line in lines if line.startswith("  back_right_quarter_panel ")]
    assert priced
    # and every amount, the lines' and the subtotal's, tax's and total's, ends in one column
    sums = [line for line in lines if line.split()[:1] in (["subtotal"], ["tax"], ["total"])]
    ends = {line.index("  [") for line in priced} | {len(line) for line in sums[:2]}
    assert len(sums) == 3 and len(ends) == 1


def test_a_codes_reasons_are_printed_under_it_once_their_shared_explanation_once() -> None:
    from cdat.assessment import Assessment, Reason, Triage, TriageDecision
    from mobile_api.cli.local import render_table

    why = "seen only close up; confirm how severe it is"
    # given a claim of three close-up findings whose severity is to confirm, two unsure
    triage = Triage(
        TriageDecision.NEEDS_REVIEW,
        2,
        (
            Reason("severity_to_confirm", f"moderate dent on hood: {why}", 2),
            Reason("low_confidence", "moderate dent on hood, confidence 0.13: under 0.60", 1),
            Reason("severity_to_confirm", f"minor scratch on front_bumper: {why}", 2),
            Reason("over_limit", "estimate 120000 INR is not under the limit", 1),
            Reason(
                "low_confidence", "minor scratch on front_bumper, confidence 0.20: under 0.60", 1
            ),
            Reason("severity_to_confirm", f"severe dent on trunk: {why}", 2),
        ),
    )
    assessment = Assessment((), (), {}, triage=triage)
    # when it is printed
    lines = render_table(assessment).splitlines()
    reasons = lines[lines.index("Triage: needs_review (priority 2)") + 1 :]
    # then each code heads its reasons once, in the order it was first given; the shared
    # explanation is said once, each finding named under it
    assert reasons == [
        f"  - severity_to_confirm, 3 times: {why}:",
        "      moderate dent on hood",
        "      minor scratch on front_bumper",
        "      severe dent on trunk",
        "  - low_confidence, 2 times: under 0.60:",
        "      moderate dent on hood, confidence 0.13",
        "      minor scratch on front_bumper, confidence 0.20",
        "  - over_limit: estimate 120000 INR is not under the limit",
    ]


def test_a_fraud_signal_is_printed_once_under_triage_named_by_its_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a photo without a capture time: a fraud signal, and a triage reason for it
    monkeypatch.setenv("CDAT_ANALYZER", "tests.fakes:build_fake_analyzer")
    monkeypatch.chdir(tmp_path)
    bare = tmp_path / "bare.jpg"
    bare.write_bytes(images.jpeg(320, 240, color=(20, 30, 40)))
    # when it is assessed and printed as a table
    assert main(["assess", str(bare), "--loss-date", "2026-11-20"]) == 0
    out = capsys.readouterr().out
    # then the signal's message is printed once, as a triage reason led by its code
    message = "photo 1:bare.jpg has no capture time"
    assert out.count(message) == 1
    assert f"  - fraud_signal: capture_time_missing: {message}" in out


def test_a_damage_outlined_again_is_folded_under_the_surer_one_it_outlines() -> None:
    from cdat.assessment import Assessment
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.taxonomy import CarPart, DamageType, Severity
    from mobile_api.cli.local import render_table

    def dent(confidence: float, x1: float, x2: float) -> DamageInstance:
        square = ((x1, 10.0), (x2, 10.0), (x2, 60.0), (x1, 60.0))
        return DamageInstance(
            DamageType.DENT, Severity.MODERATE, confidence, Box(x1, 10, x2, 60),
            polygon=square, part=CarPart.HOOD,
        )  # fmt: skip

    # given a photo whose surest dent is outlined again twice (once mostly inside it, once
    # inside it), an outline of the first of those that lies outside the surest one, and a
    # dent elsewhere on the hood
    whole, overlapping = dent(0.8, 10, 110), dent(0.5, 50, 150)
    beyond, elsewhere, inside = dent(0.3, 115, 145), dent(0.6, 300, 360), dent(0.4, 15, 105)
    damages = (whole, elsewhere, overlapping, beyond, inside)
    assessment = Assessment((PhotoAnalysis("1:p.jpg", 640, 480, damages=damages),), (), {})
    # when it is printed as a table
    lines = render_table(assessment).splitlines()
    # then each damage keeps its number in the photo (as the workspace numbers it), and the
    # outlines are named on the line of the damage they outline, not listed as damages
    rows = [line for line in lines if "conf" in line]
    assert [row.split()[0] for row in rows] == ["#1", "#2"]
    assert rows[0].endswith("conf 0.80  (also outlined as #3, #4, #5)")
    assert rows[1].endswith("conf 0.60")


def test_a_damage_outlined_again_many_times_names_the_first_outlines_and_counts_the_rest() -> None:
    from cdat.assessment import Assessment
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.taxonomy import CarPart, DamageType, Severity
    from mobile_api.cli.local import render_table

    # given one dent outlined again six times inside itself
    def dent(confidence: float, inset: float) -> DamageInstance:
        x1, x2 = 10 + inset, 110 - inset
        square = ((x1, 10.0), (x2, 10.0), (x2, 60.0), (x1, 60.0))
        return DamageInstance(
            DamageType.DENT, Severity.MINOR, confidence, Box(x1, 10, x2, 60),
            polygon=square, part=CarPart.HOOD,
        )  # fmt: skip

    damages = tuple(dent(0.9 - 0.1 * k, 5 * k) for k in range(7))
    assessment = Assessment((PhotoAnalysis("1:p.jpg", 640, 480, damages=damages),), (), {})
    # when it is printed as a table
    rows = [line for line in render_table(assessment).splitlines() if "conf" in line]
    # then its line names four of them and counts the other two
    assert len(rows) == 1
    assert rows[0].endswith("(also outlined as #2, #3, #4, #5 and 2 more)")


def test_a_damage_named_again_as_another_type_is_named_on_the_line_it_repeats() -> None:
    from cdat.assessment import Assessment
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.taxonomy import CarPart, DamageType, Severity
    from mobile_api.cli.local import render_table

    def seen(kind: DamageType, confidence: float, x1: float, x2: float) -> DamageInstance:
        square = ((x1, 10.0), (x2, 10.0), (x2, 60.0), (x1, 60.0))
        return DamageInstance(
            kind, Severity.MODERATE, confidence, Box(x1, 10, x2, 60),
            polygon=square, part=CarPart.HOOD,
        )  # fmt: skip

    # given a dent, a less sure scratch inside it, that scratch outlined again inside
    # itself, and a scratch apart from the dent
    dent = seen(DamageType.DENT, 0.8, 10, 110)
    named, outline = seen(DamageType.SCRATCH, 0.5, 20, 100), seen(DamageType.SCRATCH, 0.3, 30, 90)
    apart = seen(DamageType.SCRATCH, 0.6, 300, 360)
    damages = (dent, named, outline, apart)
    assessment = Assessment((PhotoAnalysis("1:p.jpg", 640, 480, damages=damages),), (), {})
    # when it is printed as a table
    rows = [line for line in render_table(assessment).splitlines() if "conf" in line]
    # then the named scratch and its outline are named on the dent's line, each as it
    # repeats the dent, and the scratch apart keeps a line of its own
    assert [row.split()[0] for row in rows] == ["#1", "#4"]
    assert rows[0].endswith("conf 0.80  (also outlined as #3; named again as #2)")
    assert rows[1].endswith("conf 0.60")


def test_a_damage_s_line_gives_its_chance_where_curves_read_one() -> None:
    from cdat.assessment import Assessment
    from cdat.findings import Box, DamageInstance, PhotoAnalysis
    from cdat.taxonomy import CarPart, DamageType, Severity
    from mobile_api.cli.local import render_table

    # given a dent scored 0.05 that its model's curves read as a 0.85 chance of damage, and
    # a scratch no curves read
    dent = DamageInstance(
        DamageType.DENT, Severity.MINOR, 0.05, Box(0, 0, 10, 10), part=CarPart.HOOD, chance=0.85
    )
    scratch = DamageInstance(
        DamageType.SCRATCH, Severity.MINOR, 0.3, Box(200, 0, 210, 10), part=CarPart.HOOD
    )
    photo = PhotoAnalysis("1:p.jpg", 640, 480, damages=(dent, scratch))
    # when printed, then the dent's line says its chance and the scratch's its score
    rows = [
        line for line in render_table(Assessment((photo,), (), {})).splitlines() if "conf" in line
    ]
    assert rows[0].endswith("conf 0.85") and rows[1].endswith("conf 0.30")
