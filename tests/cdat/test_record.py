"""The stored assessment record: one codec, versioned, reading what was stored before."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from cdat.assessment import Assessment, Estimate, Operation, Reason, Triage, TriageDecision
from cdat.findings import Box, DamageInstance, Evidence, PartFinding, PhotoAnalysis
from cdat.record import FORMAT, RecordError, decode, encode
from cdat.taxonomy import CarPart, DamageType, Severity

DENT = DamageInstance(
    DamageType.DENT,
    Severity.MODERATE,
    0.8,
    Box(1, 2, 30, 40),
    ((1.0, 2.0), (30.0, 2.0), (30.0, 40.0)),
    CarPart.HOOD,
    0.25,
    review="edited",
)


def assessment() -> Assessment:
    return Assessment(
        photos=(PhotoAnalysis("p1", 64, 48, (DENT,), perceptual_hash="00ff00ff00ff00ff"),),
        findings=(),
        model_versions={"damage": "d-1"},
        triage=Triage(TriageDecision.NEEDS_REVIEW, 3, (Reason("over_limit", "too much", 3),)),
        operation_overrides={CarPart.HOOD: Operation.REPLACE},
    )


def test_a_record_reads_back_as_it_was_written_without_the_photo_hash() -> None:
    # given an assessment with an adjuster's edit and an operation override
    original = assessment()
    # when it is stored as JSON and read back
    stored = json.loads(json.dumps(encode(original)))
    again = decode(stored)
    # then it is the same assessment, typed, except the hash the index keeps
    assert stored["format"] == FORMAT
    assert "perceptual_hash" not in stored["photos"][0]
    assert again.photos[0].perceptual_hash is None
    assert again.photos[0].damages == (DENT,)
    assert again.operation_overrides == {CarPart.HOOD: Operation.REPLACE}
    assert again.triage == original.triage


def test_records_of_the_first_format_still_read() -> None:
    # given a body as format 1 stored it: no format key, a derived `usable` per photo
    body = encode(assessment())
    del body["format"]
    body["photos"][0]["usable"] = True
    del body["triage"]["reasons"][0]["weight"]
    body["estimate"] = None
    # when it is read
    old = decode(body)
    # then it reads, with the fields format 1 lacked at their defaults
    assert old.photos[0].damages[0].part is CarPart.HOOD
    assert old.triage is not None and old.triage.reasons[0].weight == 0


def test_findings_stored_before_coverage_cut_off_read_as_priced_then() -> None:
    # given a format 2 record whose finding has no `coverage_cut_off`
    cut = PartFinding(
        CarPart.HOOD, DamageType.DENT, Severity.SEVERE, 0.8, 0.6, (Evidence("p1", 0.8, 0),), True
    )
    body = encode(Assessment((), (cut,), {}))
    assert body["findings"][0]["coverage_cut_off"] is True
    body["format"] = 2
    del body["findings"][0]["coverage_cut_off"]
    # when it is read
    old = decode(body)
    # then its coverage counts as measured on the whole part, as its estimate was priced
    assert old.findings[0].coverage_cut_off is False
    assert old.findings[0].part_coverage == 0.6


def test_findings_stored_before_named_again_read_as_separate_damages() -> None:
    # given a format 3 record whose finding has no `named_again`
    again = PartFinding(
        CarPart.HOOD,
        DamageType.SCRATCH,
        Severity.MINOR,
        0.3,
        0.2,
        (Evidence("p1", 0.3, 1),),
        named_again=True,
    )
    body = encode(Assessment((), (again,), {}))
    assert body["findings"][0]["named_again"] is True
    body["format"] = 3
    del body["findings"][0]["named_again"]
    # when it is read, then it is a damage of its own, as its estimate was priced
    assert decode(body).findings[0].named_again is False


@pytest.mark.parametrize("version", [FORMAT + 1, "2", 0])
def test_a_record_of_an_unknown_format_is_refused_naming_it(version: object) -> None:
    body = {**encode(assessment()), "format": version}
    with pytest.raises(RecordError, match="format"):
        decode(body)


def test_a_record_that_does_not_match_its_format_is_refused() -> None:
    body = encode(assessment())
    body["photos"][0]["damages"][0]["severity"] = "catastrophic"
    with pytest.raises(RecordError, match=f"does not match format {FORMAT}"):
        decode(body)


def test_money_stays_decimal() -> None:
    estimate = Estimate(
        "INR", (), Decimal("10.10"), Decimal("1.82"), Decimal("11.92"), Decimal("11"), Decimal("13")
    )
    again = decode(encode(Assessment((), (), {}, estimate=estimate)))
    assert again.estimate is not None and again.estimate.total == Decimal("11.92")


def test_photos_stored_before_the_read_view_read_as_having_none() -> None:
    # given a format 4 record whose photo has no `whole_car_view_probability`
    body = encode(assessment())
    assert "whole_car_view_probability" in body["photos"][0]
    body["format"] = 4
    del body["photos"][0]["whole_car_view_probability"]
    # when it is read, then no view was read for it, as none was when it was assessed
    assert decode(body).photos[0].whole_car_view_probability is None
    assert encode(decode(body))["format"] == FORMAT


def test_photos_stored_before_severity_read_close_up_read_as_read_whole() -> None:
    # given a format 5 record whose photo has no `severity_read_close_up`
    seen = PhotoAnalysis("p1", 640, 480, severity_read_close_up=True)
    body = encode(Assessment((seen,), (), {}))
    assert body["photos"][0]["severity_read_close_up"] is True
    body["format"] = 5
    del body["photos"][0]["severity_read_close_up"]
    # when it is read, then no close-up stage read it: no severity waits on an adjuster
    assert decode(body).photos[0].severity_read_close_up is False


def test_damages_and_findings_stored_before_their_chance_read_as_scores() -> None:
    # given a format 6 record whose damage and finding have no `chance`
    read = replace(DENT, chance=0.83)
    found = PartFinding(CarPart.HOOD, DamageType.DENT, Severity.MINOR, 0.25, 0.1, (), chance=0.83)
    body = encode(Assessment((PhotoAnalysis("p1", 64, 48, (read,)),), (found,), {}))
    assert body["photos"][0]["damages"][0]["chance"] == 0.83
    assert decode(body).findings[0].chance == 0.83
    body["format"] = 6
    del body["photos"][0]["damages"][0]["chance"]
    del body["findings"][0]["chance"]
    # when it is read, then no curves read them: each is as certain as its confidence
    again = decode(body)
    assert again.photos[0].damages[0].chance is None
    assert again.photos[0].damages[0].certainty == 0.8
    assert again.findings[0].certainty == 0.25


def test_findings_stored_before_part_outlined_read_as_measured() -> None:
    # given a format 7 record whose finding has no `part_outlined`
    found = PartFinding(CarPart.FRONT_LEFT_FENDER, DamageType.DENT, Severity.MINOR, 0.4, 0.0, ())
    body = encode(Assessment((), (replace(found, part_outlined=False),), {}))
    assert body["findings"][0]["part_outlined"] is False
    body["format"] = 7
    del body["findings"][0]["part_outlined"]
    # when it is read, then its coverage reads as measured, as it was described when stored
    assert decode(body).findings[0].part_outlined is True
