"""Load-time checks that a rule book and a catalog make sense together.

Schemas check each file alone; these check what only shows when rules are applied
to prices: every (part, damage, severity, coverage) has a rule, and one that does not
replace the part (for a finding too unsure to decide a replacement), and a single
finding's cost and paintwork never fall as its severity rises, whether it is the part's
surest finding or stands beside a far surer one. The estimator's
monotonicity for whole claims rests on the second check (see `cdat.estimate`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import tempfile
from decimal import Decimal
from pathlib import Path

from cdat.catalog import Catalog, ClassDecision, VehicleClass
from cdat.datafiles import DataFile
from cdat.estimate import decide, price_decided
from cdat.findings import PartFinding
from cdat.pricing import Pricing
from cdat.rules import RuleBook
from cdat.taxonomy import CarPart, DamageType, Severity

SEVERITIES = sorted(Severity, key=lambda s: s.rank)

_PASSED: set[str] = set()
"""Digests of the (rules, catalog, region, code) that passed in this process. The monotone
check prices every part, damage type, coverage, vehicle class and view (seconds on a 2-core
machine), and one process loads the same files again and again: each runtime a test or an
API process builds. A policy that failed is checked again."""

CHECKED_FOLDER = "policy-checks"
"""Under the settings' cache dir: one empty file per digest that passed, so that each new
process (a `cdat assess`, a worker) does not price everything again for the same files
and code."""


def check_policy(
    rules: RuleBook,
    catalog: Catalog,
    region: str,
    file: DataFile,
    *,
    remember_in: Path | None = None,
) -> None:
    """Both checks below, once for the same rules, catalog, region and `cdat` code: in this
    process, and across processes where `remember_in` is given."""
    digest = _policy_digest(rules, catalog, region)
    marker = None if remember_in is None else remember_in / CHECKED_FOLDER / digest
    if digest in _PASSED or (marker is not None and marker.is_file()):
        _PASSED.add(digest)
        return
    check_rules_cover_everything(rules, file)
    check_severity_monotone(rules, catalog, region, file)
    _PASSED.add(digest)
    if marker is not None:
        _remember(marker)


def _policy_digest(rules: RuleBook, catalog: Catalog, region: str) -> str:
    parts = (rules.model_dump_json(), catalog.model_dump_json(), region, _code_digest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@functools.cache
def _code_digest() -> str:
    """Every module of `cdat`: pricing, rules, catalog and these checks all live there, and a
    verdict reached by other code than this must not be trusted."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).resolve().parent.rglob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _remember(marker: Path) -> None:
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=marker.parent, delete=False) as written:
            pass
        os.replace(written.name, marker)
    except OSError:
        # A read-only or full cache only costs the next process the check; the policy passed.
        return


def check_rules_cover_everything(rules: RuleBook, file: DataFile) -> None:
    for part in CarPart:
        for damage in DamageType:
            for severity in Severity:
                for coverage in rules.coverage_breakpoints():
                    if rules.first_match(part, damage, severity, coverage, cut_off=True) is None:
                        raise file.error(
                            ("rules",),
                            f"no rule matches {part.value} / {damage.value} / {severity.value} "
                            "on photos that cut the part off; add a catch-all rule at the end "
                            "with no min_coverage",
                        )
                    if rules.first_match(part, damage, severity, coverage) is None:
                        raise file.error(
                            ("rules",),
                            f"no rule matches {part.value} / {damage.value} / {severity.value} "
                            f"at coverage {coverage:g}; add a catch-all rule at the end",
                        )
                    if rules.first_match(part, damage, severity, coverage, may_replace=False):
                        continue
                    raise file.error(
                        ("rules",),
                        f"only rules that replace match {part.value} / {damage.value} / "
                        f"{severity.value} at coverage {coverage:g}, so a finding too unsure "
                        "to decide a replacement has no price; end with a catch-all that "
                        "repairs",
                    )


def check_severity_monotone(rules: RuleBook, catalog: Catalog, region: str, file: DataFile) -> None:
    """Cost and paintwork of one finding must not fall from minor to moderate to severe."""
    for klass in VehicleClass:
        pricing = Pricing(catalog, rules, region, ClassDecision(klass, "check"))
        for part in CarPart:
            for damage in DamageType:
                for coverage in rules.coverage_breakpoints():
                    for surest, cut_off in ((None, False), (math.inf, False), (None, True)):
                        _check_one(part, damage, coverage, pricing, file, surest, cut_off)


def _check_one(
    part: CarPart,
    damage: DamageType,
    coverage: float,
    pricing: Pricing,
    file: DataFile,
    surest: float | None,
    cut_off: bool,
) -> None:
    """`surest`: None prices the finding as the part's surest; `math.inf` as one beside a
    far surer finding (too unsure to decide a replacement). `cut_off`: its coverage measured
    only on photos that cut the part off (a rule on coverage cannot replace the part)."""
    previous: tuple[Decimal, bool, str] | None = None
    for severity in SEVERITIES:
        finding = PartFinding(part, damage, severity, 1.0, coverage, (), cut_off)
        lines = price_decided(part, decide([finding], pricing.rules, surest=surest), pricing)
        cost = sum((line.total for line in lines), Decimal(0))
        paints = any(line.paint_hours > 0 for line in lines)
        rule_id = lines[0].rule_id if lines else "-"
        if previous is not None and (cost < previous[0] or (previous[1] and not paints)):
            ids = [rule.id for rule in pricing.rules.rules]
            loc: tuple[str | int, ...] = (
                ("rules", ids.index(rule_id)) if rule_id in ids else ("rules",)
            )
            unsure = "" if surest is None else ", too unsure to replace"
            unsure += ", its part cut off by the photos" if cut_off else ""
            raise file.error(
                loc,
                f"{part.value} / {damage.value} at coverage {coverage:g} "
                f"({pricing.vehicle.vehicle_class.value}{unsure}): "
                f"{severity.value} damage under rule "
                f"{rule_id} costs {cost} (paint: {paints}) but the lower severity under rule "
                f"{previous[2]} costs {previous[0]} (paint: {previous[1]}); cost and "
                "paintwork must not fall as severity rises",
            )
        previous = (cost, paints, rule_id)
