"""The public shape of an assessment, derived from the domain types in one place.

`PUBLIC_VIEWS` names each domain type the API shows, the fields it leaves out (each with
the reason) and the fields it adds; `public_schema` makes the schema from the dataclass:
every other field under its own name, with its docstring as the description, an enum as
its value, a tuple as a list, a nested domain type as that type's public schema. A field
added to a domain type is therefore public unless it is left out with a reason
(tests/api/test_public_schemas.py). Every field is in every answer, so all are required.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import operator
import textwrap
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, create_model

from cdat.assessment import (
    Assessment,
    Estimate,
    EstimateLine,
    FraudSignal,
    Reason,
    TotalLossCheck,
    Triage,
)
from cdat.claims import RetakeRequest
from cdat.findings import (
    Box,
    DamageInstance,
    Evidence,
    PartFinding,
    PartInstance,
    PhotoAnalysis,
    QualityIssue,
)


@dataclass(frozen=True)
class View:
    """How the API shows one domain type."""

    name: str
    """The schema's name in the OpenAPI document."""
    left_out: Mapping[str, str] = field(default_factory=dict)
    """Field -> why the public never sees it."""
    added: Mapping[str, tuple[Any, str]] = field(default_factory=dict)
    """Field the domain type derives (a property) -> its type and description."""
    base: type[BaseModel] = BaseModel


class PublishedVersion(BaseModel):
    """What a stored version adds to its assessment."""

    version: int
    job_id: str | None
    source: str = Field(description="'model' (assessment job) or 'adjuster' (reviewed version)")
    created_at: datetime
    photo_ids: list[str]


PUBLIC_VIEWS: dict[type, View] = {
    Assessment: View("AssessmentPublic", base=PublishedVersion),
    PhotoAnalysis: View(
        "PhotoAssessmentPublic",
        left_out={
            "perceptual_hash": "fraud evidence: it would let a client probe the reuse check",
            "timings_ms": "operations data, in the metrics and logs",
        },
        added={"usable": (bool, "No blocking quality issue: the photo is assessed")},
    ),
    DamageInstance: View("DamagePublic"),
    Box: View("BoxPublic"),
    PartInstance: View("PartSeenPublic"),
    QualityIssue: View("QualityIssuePublic"),
    PartFinding: View("FindingPublic"),
    Evidence: View("EvidencePublic"),
    Estimate: View("EstimatePublic"),
    EstimateLine: View("EstimateLinePublic"),
    TotalLossCheck: View("TotalLossPublic"),
    Triage: View("TriagePublic"),
    Reason: View("ReasonPublic"),
    FraudSignal: View("FraudSignalPublic"),
    RetakeRequest: View("RetakeRequest"),
}

_MADE: dict[type, type[BaseModel]] = {}


def public_schema(domain: type) -> type[BaseModel]:
    """The schema that shows `domain` (made once, from `PUBLIC_VIEWS[domain]`)."""
    if domain in _MADE:
        return _MADE[domain]
    view = PUBLIC_VIEWS[domain]
    names = {f.name for f in dataclasses.fields(domain)}
    if unknown := set(view.left_out) - names:
        raise TypeError(f"{view.name} leaves out {sorted(unknown)}: {domain.__name__} has none")
    hints = typing.get_type_hints(domain)
    written, docs = _docstrings(domain)
    fields: dict[str, Any] = {
        f.name: (_public(hints[f.name]), Field(description=docs.get(f.name)))
        for f in dataclasses.fields(domain)
        if f.name not in view.left_out
    }
    for name, (kind, description) in view.added.items():
        fields[name] = (kind, Field(description=description))
    model = create_model(
        view.name,
        __base__=view.base,
        __doc__=written,
        __module__=__name__,
        **fields,
    )
    _MADE[domain] = model
    return model


def _public(hint: Any) -> Any:
    """A domain type as the public reads it: JSON-shaped, nested types by their schema."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return public_schema(hint)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return str  # the value; the domain may add members without breaking a client
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return types.GenericAlias(list, (_public(args[0]),))
    if origin is tuple:  # fixed length: a point stays a pair
        return types.GenericAlias(tuple, tuple(_public(a) for a in args))
    if origin is dict:
        return types.GenericAlias(dict, (_public(args[0]), _public(args[1])))
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, [_public(a) for a in args])
    return hint


def _docstrings(cls: type) -> tuple[str | None, dict[str, str]]:
    """The class's docstring as written (a dataclass makes one up when there is none), and
    field -> the docstring written under it in the class body."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    if not isinstance(body, ast.ClassDef):
        raise TypeError(f"{cls.__name__} is not a class statement")
    docs = {}
    for statement, after in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(after.value.value)
    return ast.get_docstring(body), docs


# mypy cannot follow a class made at import time; it checks against the base instead.
if TYPE_CHECKING:
    AssessmentPublic = PublishedVersion
    RetakeRequestPublic = BaseModel
else:
    AssessmentPublic = public_schema(Assessment)
    RetakeRequestPublic = public_schema(RetakeRequest)
