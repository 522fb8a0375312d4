"""The one way a served rule is read back from a registry entry (the whole-car rule, the
part-family rule, the verifier rule): every field known, the required ones present, then the
rule's own checks. A damaged record is a ValueError naming the rule and the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, TypeVar

Rule = TypeVar("Rule")


def rule_from_record(
    cls: type[Rule], record: Mapping[str, Any], required: Sequence[str], what: str
) -> Rule:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(record) - known)
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(unknown)}")
    missing = [k for k in required if k not in record]
    if missing:
        raise ValueError(
            f"{what}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required"
        )
    return cls(**record)
