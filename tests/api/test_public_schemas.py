"""Every field of the stored assessment is shown by its public schema or left out on purpose.

`assessment_schemas.PUBLIC_VIEWS` names, for each domain type an assessment is made of, the
schema that shows it and the fields it leaves out, each with the reason. A field added to a
domain type fails this test until it is given a public counterpart or a reason.
"""

from __future__ import annotations

import dataclasses
import typing

from cdat.assessment import Assessment
from mobile_api.api.assessment_schemas import PUBLIC_VIEWS


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


def test_every_domain_type_of_an_assessment_has_a_public_view() -> None:
    # given the domain types a stored assessment is made of
    # then each is shown by a public schema
    missing = {cls.__name__ for cls in domain_types(Assessment)} - {
        cls.__name__ for cls in PUBLIC_VIEWS
    }
    assert missing == set()


def test_every_domain_field_is_public_or_left_out_with_a_reason() -> None:
    # given each domain type and the schema that shows it
    unaccounted = {}
    wrongly_left_out = {}
    for domain, (schema, left_out) in PUBLIC_VIEWS.items():
        fields = {field.name for field in dataclasses.fields(domain)}
        shown = set(schema.model_fields)
        # then every domain field is shown, or left out with a reason, never both
        if missing := fields - shown - set(left_out):
            unaccounted[domain.__name__] = sorted(missing)
        if both := set(left_out) & shown:
            wrongly_left_out[domain.__name__] = sorted(both)
        assert all(reason.strip() for reason in left_out.values()), domain.__name__
    assert unaccounted == {}
    assert wrongly_left_out == {}


def test_a_domain_field_that_may_be_missing_may_be_missing_in_public() -> None:
    # given each field a public schema shows of a domain type
    too_strict = []
    for domain, (schema, _) in PUBLIC_VIEWS.items():
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
