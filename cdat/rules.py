"""Repair-operation rules: which operation a damage finding calls for, as data.

`rules.yaml` (schema `RuleBook`) lists rules in priority order; the first rule
whose `when` matches a finding decides its operation, and every estimate line
carries that rule's id. Conditions left out match anything. See
`cdat/data/CATALOG.md` for the file format.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from enum import Enum
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cdat.assessment import Operation
from cdat.catalog import LabourKind
from cdat.findings import PartFinding
from cdat.taxonomy import CarPart, DamageType, Severity


class PartKind(str, Enum):
    PANEL = "panel"
    GLASS = "glass"
    LAMP = "lamp"
    WHEEL = "wheel"


def part_kind(part: CarPart) -> PartKind:
    if part.is_glass:
        return PartKind.GLASS
    if part.is_lamp:
        return PartKind.LAMP
    if part is CarPart.WHEEL:
        return PartKind.WHEEL
    return PartKind.PANEL


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    parts: list[CarPart] | None = None
    part_kinds: list[PartKind] | None = None
    damage_types: list[DamageType] | None = None
    severities: list[Severity] | None = None
    min_coverage: float = Field(default=0.0, ge=0, le=1)
    """Inclusive lower bound on the share of the part the damage covers."""
    coverage_below: float | None = Field(default=None, gt=0, le=1)
    """Exclusive upper bound on the covered share."""

    def matches(
        self,
        part: CarPart,
        damage: DamageType,
        severity: Severity,
        cover: float,
        cut_off: bool = False,
    ) -> bool:
        """`cut_off`: `cover` was measured only on photos that cut the part off, so it bounds
        the covered share from above: it can show the share is below a bound, never that it
        reaches `min_coverage`."""
        return (
            (self.parts is None or part in self.parts)
            and (self.part_kinds is None or part_kind(part) in self.part_kinds)
            and (self.damage_types is None or damage in self.damage_types)
            and (self.severities is None or severity in self.severities)
            and cover >= self.min_coverage
            and not (cut_off and self.min_coverage > 0)
            and (self.coverage_below is None or cover < self.coverage_below)
        )


RuleOperation = Literal["repair", "replace", "refinish", "repair_and_refinish"]


class Rule(_Strict):
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]*$")
    description: str = Field(min_length=1)
    when: Condition = Condition()
    operation: RuleOperation
    repair_labour: LabourKind = LabourKind.BODY
    """Trade for the repair hours (a tyre repair is mechanical work)."""

    @property
    def op(self) -> Operation:
        return Operation(self.operation)

    @property
    def repairs(self) -> bool:
        return self.op in (Operation.REPAIR, Operation.REPAIR_AND_REFINISH)

    @property
    def refinishes(self) -> bool:
        return self.op in (Operation.REFINISH, Operation.REPAIR_AND_REFINISH)

    @property
    def replaces(self) -> bool:
        return self.op is Operation.REPLACE


class RepairHours(_Strict):
    base: Decimal = Field(ge=0)
    per_full_coverage: Decimal = Field(ge=0)
    """Extra hours when the damage covers the whole part; scaled by the covered share."""

    def hours(self, coverage: float) -> Decimal:
        share = Decimal(str(round(min(max(coverage, 0.0), 1.0), 4)))
        return self.base + self.per_full_coverage * share


class BlendRule(_Strict):
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]*$")
    fraction: Decimal = Field(gt=0, le=1)
    """Share of the neighbour's full refinish hours spent blending colour into it."""
    exclude_parts: list[CarPart] = []
    """Parts never blended (too small for a colour mismatch to show)."""


class EconomicReplace(_Strict):
    id: str = Field(pattern=r"^[A-Z0-9][A-Z0-9_.-]*$")
    enabled: bool = True


class RangePolicy(_Strict):
    """Estimate range half-width, per line: base + per_missing_confidence x (1 - confidence)."""

    base_pct: Decimal = Field(ge=0, lt=100)
    per_missing_confidence_pct: Decimal = Field(ge=0)
    max_pct: Decimal = Field(gt=0, lt=100)


class RuleBook(_Strict):
    version: str = Field(min_length=1)
    repair_hours: dict[Severity, RepairHours]
    rules: list[Rule] = Field(min_length=1)
    blend: BlendRule
    economic_replace: EconomicReplace
    adjacency: dict[CarPart, list[CarPart]]
    estimate_range: RangePolicy

    @field_validator("repair_hours")
    @classmethod
    def _hours_rise_with_severity(
        cls, hours: dict[Severity, RepairHours]
    ) -> dict[Severity, RepairHours]:
        missing = [s.value for s in Severity if s not in hours]
        if missing:
            raise ValueError(f"missing severities: {', '.join(missing)}")
        ordered = [hours[s] for s in sorted(Severity, key=lambda s: s.rank)]
        for lower, higher in pairwise(ordered):
            if higher.base < lower.base or higher.per_full_coverage < lower.per_full_coverage:
                raise ValueError("repair hours must not fall as severity rises")
        return hours

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[Rule]) -> list[Rule]:
        ids = [rule.id for rule in rules]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"rule ids used more than once: {', '.join(twice)}")
        return rules

    @field_validator("adjacency")
    @classmethod
    def _no_self_neighbour(
        cls, adjacency: dict[CarPart, list[CarPart]]
    ) -> dict[CarPart, list[CarPart]]:
        for part, neighbours in adjacency.items():
            if part in neighbours:
                raise ValueError(f"{part.value} lists itself as its neighbour")
        return adjacency

    def match(self, finding: PartFinding, *, may_replace: bool = True) -> Rule | None:
        """`may_replace=False`: the first rule that does not replace the part (the one a
        finding too unsure to decide a replacement is priced by)."""
        if finding.part is None:
            return None
        return self.first_match(
            finding.part,
            finding.damage_type,
            finding.severity,
            finding.part_coverage,
            may_replace=may_replace,
            cut_off=finding.coverage_cut_off,
        )

    def first_match(
        self,
        part: CarPart,
        damage: DamageType,
        severity: Severity,
        coverage: float,
        *,
        may_replace: bool = True,
        cut_off: bool = False,
    ) -> Rule | None:
        for rule in self.rules:
            if rule.replaces and not may_replace:
                continue
            if rule.when.matches(part, damage, severity, coverage, cut_off):
                return rule
        return None

    def neighbours(self) -> dict[CarPart, frozenset[CarPart]]:
        """Adjacency made symmetric: listing a pair once, either way round, is enough."""
        both: dict[CarPart, set[CarPart]] = defaultdict(set)
        for part, listed in self.adjacency.items():
            for other in listed:
                both[part].add(other)
                both[other].add(part)
        return {part: frozenset(others) for part, others in both.items()}

    def coverage_breakpoints(self) -> list[float]:
        """Coverage values where some rule's answer can change, plus both ends."""
        points = {0.0, 1.0}
        for rule in self.rules:
            points.add(rule.when.min_coverage)
            if rule.when.coverage_below is not None:
                points.add(rule.when.coverage_below)
                points.add(max(0.0, rule.when.coverage_below - 1e-4))
        return sorted(points)
