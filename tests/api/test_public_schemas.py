"""The public assessment is derived from the domain types, in one place.

`assessment_schemas.PUBLIC_VIEWS` names each domain type the API shows, the fields it
leaves out (each with the reason) and the fields it adds; `public_schema` makes every
schema from its dataclass. A field added to a domain type is public by itself, and one
that must not be is left out with a reason; the answer a client reads is the stored
version with exactly those changes.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from cdat.assessment import Assessment, FraudSignal, Operation
from cdat.claims import RetakeRequest
from cdat.corrections import Corrections
from cdat.findings import Box, DamageInstance, PartInstance, QualityIssue
from cdat.pipeline import assess_claim, load_policy
from cdat.record import encode
from cdat.taxonomy import CarPart, DamageType, Severity
from mobile_api.api import assessment_schemas
from mobile_api.api.assessment_schemas import PUBLIC_VIEWS, View, public_schema
from mobile_api.api.serialize import assessment_public
from mobile_api.storage import models
from tests.cdat.conftest import context, meta, photo, settings


def domain_types(root: type) -> set[type]:
    """`root` and every dataclass reachable from its fields."""
    found: set[type] = set()
    todo = [root]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.add(cls)
        for hint in typing.get_type_hints(cls).values():
            stack = [hint]
            while stack:
                kind = stack.pop()
                if dataclasses.is_dataclass(kind) and isinstance(kind, type):
                    todo.append(kind)
                stack.extend(typing.get_args(kind))
    return found


def test_every_domain_type_the_api_shows_has_a_public_view() -> None:
    # given the domain types a stored assessment and a retake request are made of
    shown = domain_types(Assessment) | domain_types(RetakeRequest)
    # then each has a view
    assert {cls.__name__ for cls in shown} - {cls.__name__ for cls in PUBLIC_VIEWS} == set()


def test_every_domain_field_is_public_under_its_name_or_left_out_with_a_reason() -> None:
    for domain, view in PUBLIC_VIEWS.items():
        # given each domain type's fields and its schema
        fields = {field.name for field in dataclasses.fields(domain)}
        shown = set(public_schema(domain).model_fields) - set(view.base.model_fields)
        # then the schema shows exactly the fields not left out, and what it adds
        assert shown == fields - set(view.left_out) | set(view.added), domain.__name__
        assert all(reason.strip() for reason in view.left_out.values()), domain.__name__


@dataclass(frozen=True)
class Sample:
    """A domain type that grows a field."""

    kind: DamageType
    where: tuple[tuple[float, float], ...]
    grown: int = 0
    """A field added later."""
    secret: str = ""


def test_a_field_added_to_a_domain_type_is_public_unless_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(assessment_schemas, "_MADE", {})
    # given a view of a domain type that leaves one field out
    monkeypatch.setitem(PUBLIC_VIEWS, Sample, View("SamplePublic", left_out={"secret": "why"}))
    # when its schema is made
    schema = public_schema(Sample)
    # then the new field is public, described by its docstring, and the secret is not
    assert list(schema.model_fields) == ["kind", "where", "grown"]
    assert schema.model_fields["grown"].description == "A field added later."
    shown = schema.model_validate({"kind": "dent", "where": [[1, 2]], "grown": 3})
    assert shown.model_dump(mode="json") == {"kind": "dent", "where": [[1.0, 2.0]], "grown": 3}
    # and leaving out a field the type does not have is refused
    monkeypatch.setattr(assessment_schemas, "_MADE", {})
    monkeypatch.setitem(PUBLIC_VIEWS, Sample, View("SamplePublic", left_out={"secrte": "typo"}))
    with pytest.raises(TypeError, match="secrte"):
        public_schema(Sample)


def test_a_domain_field_that_may_be_missing_may_be_missing_in_public() -> None:
    # given each field a public schema shows of a domain type
    too_strict = []
    for domain in PUBLIC_VIEWS:
        schema = public_schema(domain)
        hints = typing.get_type_hints(domain)
        for name, field in schema.model_fields.items():
            if name not in hints:
                continue
            # then a field the domain leaves None is optional in public too
            domain_optional = type(None) in typing.get_args(hints[name])
            public_optional = type(None) in typing.get_args(field.annotation)
            if domain_optional and not public_optional:
                too_strict.append(f"{schema.__name__}.{name}")
    assert too_strict == []


def test_the_public_assessment_is_the_stored_one_with_only_the_views_changes() -> None:
    # given a stored version with every part of an assessment filled in
    damage = DamageInstance(
        DamageType.DENT,
        Severity.SEVERE,
        0.8,
        Box(10, 10, 200, 200),
        polygon=((1.0, 2.0), (30.0, 4.0), (5.0, 40.0)),
        part=CarPart.HOOD,
        part_coverage=0.3,
    )
    seen = photo(
        "p1",
        damages=(damage,),
        parts=(PartInstance(CarPart.HOOD, 0.9, Box(0, 0, 300, 300)),),
        quality_issues=(QualityIssue("blur", "blurry", "hold still", True),),
        vehicle_probability=0.9,
        timings_ms={"damage": 12.5},
    )
    signals = (FraudSignal("duplicate_photo", "reused", "p1", {"other_claim_id": "c9"}),)
    corrections = Corrections(overrides={CarPart.HOOD: Operation.REPAIR_AND_REFINISH})
    assessment = assess_claim(
        (seen,),
        corrections,
        context(photos=(meta("p1"),)),
        signals,
        {"damage": "d-1"},
        load_policy(settings()),
    )
    stored = encode(assessment)
    record = models.AssessmentRecord(
        claim_id="c1",
        version=2,
        job_id="j1",
        photo_ids=["p1"],
        body=stored,
        source="model",
        author=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    # when the API shows it
    shown = assessment_public(record).model_dump(mode="json")
    # then it is the stored layout, with the version's facts and each view's changes
    expected = {k: v for k, v in stored.items() if k != "format"}
    expected["photos"] = [
        {**{k: v for k, v in p.items() if k != "timings_ms"}, "usable": False}
        for p in stored["photos"]
    ]
    facts = {"version": 2, "job_id": "j1", "source": "model", "photo_ids": ["p1"]}
    assert {k: v for k, v in shown.items() if k != "created_at"} == {**expected, **facts}
