"""Priced repair estimate from claim-level findings.

Per part (findings grouped by part, most severe first):

* a finding whose rule says *replace* replaces the part: a REPLACE line (new part),
  a REMOVE_AND_INSTALL line (catalog hours at the part's trade) and, for painted
  panels, a REFINISH line for the new panel; other findings on the part are absorbed.
  Only a finding credible beside the part's surest one (`cdat.merge.credible`) may
  replace it: a weak "broken" guess beside a sure dent is priced by the first rule that
  does not replace, its line saying so (triage already sends such a claim to review), and
  a damage the part cannot have beside damage it can (`cdat.findings.stray_on_its_part`)
  never replaces it;
* otherwise each finding gets its repair hours (`repair_hours` by severity and covered
  share), together at most a repair of all of the part at their worst severity, and the
  part is refinished once, on the first line whose rule refinishes; a
  finding that names again a damage a surer finding of the part names (`named_again`), or
  a damage the part cannot have beside damage it can (a broken lamp on a dented hood),
  gets no hours of its own and is listed on the part's first line;
* economic replacement: when those repair lines (with the blend the part would get, if
  it is left unpainted beside a painted panel) cost at least as much as replacing, the
  part is replaced under the `economic_replace` rule id. This also keeps the estimate
  from ever falling when a severity rises;
* blending: every painted panel next to a refinished panel (`adjacency`) that is not
  itself refinished, and that the car has (a sedan's trunk, not a tailgate), gets a BLEND
  line of `blend.fraction` of its refinish hours.

Findings without a part are not priced here (triage reports them). Money is rounded
to the currency's minor unit per component, so the lines add up to the totals exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from cdat.assessment import Estimate, EstimateLine, Operation
from cdat.claims import parts_not_fitted
from cdat.errors import ConfigurationError
from cdat.findings import PartFinding, stray_on_its_part
from cdat.merge import credible
from cdat.pricing import HOURS, ZERO, LineMaker, Pricing
from cdat.rules import Rule, RuleBook
from cdat.taxonomy import CarPart
from cdat.totals import totals

OVERRIDE_RULE_ID = "ADJUSTER_OVERRIDE"
OVERRIDABLE = (
    Operation.REPLACE,
    Operation.REPAIR,
    Operation.REPAIR_AND_REFINISH,
    Operation.REFINISH,
)


def build_estimate(
    findings: Sequence[PartFinding],
    pricing: Pricing,
    overrides: Mapping[CarPart, Operation] | None = None,
) -> Estimate:
    """`overrides`: an adjuster's operation for a part, priced instead of what the rules say
    (under rule id `OVERRIDE_RULE_ID`); blending and totals follow as usual."""
    chosen = overrides or {}
    groups = _by_part(findings)
    priced = {
        part: price_part(part, group, pricing)
        if part not in chosen
        else price_part_as(part, group, chosen[part], pricing)
        for part, group in groups.items()
    }
    ruled = {part: group for part, group in groups.items() if part not in chosen}
    _replace_where_the_blend_tips_it(priced, ruled, pricing)
    lines = [line for part_lines in priced.values() for line in part_lines]
    lines += _blend_lines(lines, _painted(priced), pricing)
    return totals(lines, pricing)


def _painted(priced: Mapping[CarPart, Sequence[EstimateLine]]) -> set[CarPart]:
    return {
        part
        for part, lines in priced.items()
        if any(line.paint_hours > 0 and line.operation is not Operation.BLEND for line in lines)
    }


def _replace_where_the_blend_tips_it(
    priced: dict[CarPart, list[EstimateLine]],
    ruled: Mapping[CarPart, Sequence[PartFinding]],
    pricing: Pricing,
) -> None:
    """Economic replacement, counting the blend a repaired but unpainted panel gets from a
    painted neighbour: repair lines alone may cost less than a new part while repair plus
    blend costs more, and then a severity rising far enough to replace the part would lower
    the estimate. Replacing paints the part, so its own neighbours may tip in turn."""
    economic = pricing.rules.economic_replace
    changed = economic.enabled
    while changed:
        changed = False
        lines = [line for part_lines in priced.values() for line in part_lines]
        for blend in _blend_lines(lines, _painted(priced), pricing):
            part = blend.part
            if part is None or part not in ruled:
                continue
            replacing = economic_replacement(part, decide(ruled[part], pricing.rules), pricing)
            if _sum(replacing) <= _sum(priced[part]) + blend.total:
                priced[part] = replacing
                changed = True


def _by_part(findings: Sequence[PartFinding]) -> dict[CarPart, list[PartFinding]]:
    groups: dict[CarPart, list[PartFinding]] = {}
    for finding in findings:
        if finding.part is not None:
            groups.setdefault(finding.part, []).append(finding)
    order = list(CarPart)
    return {
        part: sorted(groups[part], key=lambda f: (-f.severity.rank, -f.confidence))
        for part in sorted(groups, key=order.index)
    }


@dataclass(frozen=True)
class Decision:
    """The rule one finding on a part is priced by."""

    finding: PartFinding
    rule: Rule
    replace_held_back: bool = False
    """Its own rule would replace the part, but the finding cannot decide that: too unsure
    beside the part's surest finding, or a rule on how much of the part is damaged where
    the photos cut the part off (`held_back_note` says which)."""
    held_back_note: str = ""


def decide(
    findings: Sequence[PartFinding], rules: RuleBook, *, surest: float | None = None
) -> list[Decision]:
    """`surest`: the confidence of the part's surest finding (default: the surest of
    `findings`; the load checks price a finding as if a far surer one stood beside it)."""
    if surest is None:
        surest = max((f.confidence for f in findings), default=0.0)
    decisions = []
    for finding in findings:
        rule = _rule_for(finding, rules)
        if stray_on_its_part(finding, findings):  # the part is priced for what fits it
            decisions.append(Decision(finding, _rule_for(finding, rules, may_replace=False)))
        elif rule.replaces and not credible(finding.confidence, surest):
            repair = _rule_for(finding, rules, may_replace=False)
            decisions.append(Decision(finding, repair, True, HELD_BACK_NOTE))
        elif _replaced_if_seen_whole(finding, rule, rules):
            decisions.append(Decision(finding, rule, True, CUT_OFF_NOTE))
        else:
            decisions.append(Decision(finding, rule))
    return decisions


def _replaced_if_seen_whole(finding: PartFinding, rule: Rule, rules: RuleBook) -> bool:
    """Would the part be replaced had a photo shown it whole with this coverage? (A rule on
    how much of the part is damaged cannot replace it on photos that cut it off.)"""
    if not finding.coverage_cut_off or rule.replaces:
        return False
    return _rule_for(replace(finding, coverage_cut_off=False), rules).replaces


def price_part(
    part: CarPart, findings: Sequence[PartFinding], pricing: Pricing
) -> list[EstimateLine]:
    """Lines for one part's findings (no blending: that depends on the neighbours)."""
    return price_decided(part, decide(findings, pricing.rules), pricing)


def price_decided(
    part: CarPart, decisions: Sequence[Decision], pricing: Pricing
) -> list[EstimateLine]:
    for decision in decisions:
        if decision.rule.replaces:
            absorbed = [d.finding for d in decisions if d is not decision]
            return _replace_lines(part, decision.rule.id, decision.finding, absorbed, pricing)
    repair = _repair_lines(part, decisions, pricing)
    economic = pricing.rules.economic_replace
    if economic.enabled and repair:
        replacing = economic_replacement(part, decisions, pricing)
        if _sum(replacing) <= _sum(repair):
            return replacing
    return repair


def economic_replacement(
    part: CarPart, decisions: Sequence[Decision], pricing: Pricing
) -> list[EstimateLine]:
    """A new part instead of repairs, named for the worst finding sure enough to decide a
    replacement (not a weak guess the rules held back), the others absorbed."""
    findings = [d.finding for d in decisions]
    sure = [d for d in decisions if not stray_on_its_part(d.finding, findings)]
    lead = next((d for d in sure if not d.replace_held_back), (sure or decisions)[0])
    others = [d.finding for d in decisions if d is not lead]
    lines = _replace_lines(part, pricing.rules.economic_replace.id, lead.finding, others, pricing)
    if not any(d.finding.coverage_cut_off for d in decisions):
        return lines
    # The repair it undercuts was priced on a share the photos may overstate, so the new
    # part stays the price's cap but not a decision.
    first = replace(lines[0], description=lines[0].description + ECONOMIC_CUT_OFF_NOTE)
    return [replace(line, repair_or_replace_undecided=True) for line in (first, *lines[1:])]


def price_part_as(
    part: CarPart, findings: Sequence[PartFinding], operation: Operation, pricing: Pricing
) -> list[EstimateLine]:
    """Lines for one part with the operation an adjuster chose (one of `OVERRIDABLE`)."""
    if operation not in OVERRIDABLE:
        raise ValueError(f"operation {operation.value} cannot be chosen for a part")
    if operation is Operation.REPLACE:
        return _replace_lines(part, OVERRIDE_RULE_ID, findings[0], findings[1:], pricing)
    rule = Rule(
        id=OVERRIDE_RULE_ID,
        description=f"{operation.value} chosen by the adjuster",
        operation=operation.value,
    )
    return _repair_lines(part, [Decision(finding, rule) for finding in findings], pricing)


def _rule_for(finding: PartFinding, rules: RuleBook, *, may_replace: bool = True) -> Rule:
    rule = rules.match(finding, may_replace=may_replace)
    if rule is None:
        raise ConfigurationError(
            f"no repair rule matches {finding.part} {finding.damage_type.value} "
            f"{finding.severity.value}; rules.yaml needs a catch-all rule"
        )
    return rule


def _name(part: CarPart) -> str:
    return part.value.replace("_", " ")


def _describe(finding: PartFinding) -> str:
    shown = " of what the photos show of it" if finding.coverage_cut_off else ""
    size = f"covering {finding.part_coverage:.0%}{shown}"
    if not finding.part_outlined:
        size = UNMEASURED_SIZE
    kind = finding.damage_type.value.replace("_", " ")
    return f"{finding.severity.value} {kind} {size} (confidence {finding.certainty:.2f})"


def _replace_lines(
    part: CarPart,
    rule_id: str,
    finding: PartFinding,
    absorbed: Sequence[PartFinding],
    pricing: Pricing,
) -> list[EstimateLine]:
    entry = pricing.catalog.parts[part]
    price = entry.prices[pricing.vehicle.vehicle_class] * pricing.region.parts_price_factor
    also = "; also covers " + ", ".join(_describe(f) for f in absorbed) if absorbed else ""
    name = part.value.replace("_", " ")
    line = LineMaker(pricing, finding.certainty, part, rule_id)
    lines = [
        line.make(
            Operation.REPLACE,
            f"new {name} ({pricing.vehicle.vehicle_class.value}) for {_describe(finding)}{also}",
            parts_cost=pricing.catalog.money(price),
        )
    ]
    if entry.remove_install_hours > 0:
        lines.append(
            line.make(
                Operation.REMOVE_AND_INSTALL,
                f"remove damaged {name} and install the new one",
                hours=entry.remove_install_hours,
                labour=entry.labour,
            )
        )
    if part.is_painted_panel and entry.refinish_hours > 0:
        lines.append(
            line.make(Operation.REFINISH, f"paint new {name}", paint_hours=entry.refinish_hours)
        )
    return lines


HELD_BACK_NOTE = " (too unsure beside surer findings to replace the part: an adjuster decides)"
ECONOMIC_CUT_OFF_NOTE = (
    " (a new part costs less than the repair, but the photos cut the part off and the share "
    "they show may overstate the damage: an adjuster decides repair or replace)"
)
CUT_OFF_NOTE = (
    " (the photos cut the part off, so how much of it is damaged is not measured: an "
    "adjuster decides on replacing it)"
)


def _repair_lines(
    part: CarPart, decisions: Sequence[Decision], pricing: Pricing
) -> list[EstimateLine]:
    entry = pricing.catalog.parts[part]
    can_paint = part.is_painted_panel and entry.refinish_hours > 0
    painted = False
    lines: list[EstimateLine] = []
    notes: list[str] = []
    findings = [d.finding for d in decisions]
    left = _whole_part_hours(decisions, pricing)
    # A damage named twice is priced under its surer name, which must be the one that paints.
    for decision in sorted(decisions, key=lambda d: d.finding.named_again):
        finding, rule = decision.finding, decision.rule
        stray = stray_on_its_part(finding, findings)
        asked = _quoted(pricing.rules.repair_hours[finding.severity].hours(finding.part_coverage))
        asked = asked if rule.repairs and not finding.named_again and not stray else ZERO
        hours = min(asked, left)
        left -= hours
        paint = rule.refinishes and can_paint and not painted
        painted = painted or paint
        op = _operation(hours > 0, paint)
        seen = _describe(finding) + decision.held_back_note
        seen += CUT_TO_WHOLE_PART_NOTE.format(part=_name(part)) if 0 < hours < asked else ""
        text = f"{op.value.replace('_', ' ')} {part.value.replace('_', ' ')}: {seen}"
        if op is Operation.REFINISH and hours == 0 and not paint:
            why = _why_no_hours(finding, part, stray, cut=asked > 0)
            notes.append(f"; also covers {seen}{why}")
            continue
        maker = LineMaker(pricing, finding.certainty, part, rule.id)
        paint_hours = entry.refinish_hours if paint else ZERO
        line = maker.make(op, text, hours=hours, labour=rule.repair_labour, paint_hours=paint_hours)
        lines.append(replace(line, repair_or_replace_undecided=decision.replace_held_back))
    for note in notes:
        lines = _note(lines, note)
    return lines


def _whole_part_hours(decisions: Sequence[Decision], pricing: Pricing) -> Decimal:
    """The most repair hours a part's damages add up to: a repair of all of it at the worst
    of their severities. Each damage's share is of what the photos show of the part, so
    shares from different photos cannot say whether two damages overlap; a part is
    repaired once, however many photos show its damage."""
    findings = [d.finding for d in decisions]
    worst = [
        d.finding.severity
        for d in decisions
        if d.rule.repairs
        and not d.finding.named_again
        and not stray_on_its_part(d.finding, findings)
    ]
    if not worst:
        return ZERO
    return _quoted(pricing.rules.repair_hours[max(worst, key=lambda s: s.rank)].hours(1.0))


def _quoted(hours: Decimal) -> Decimal:
    """Hours as a line quotes them (`cdat.pricing.HOURS`). A part's lines share out a
    whole-part repair in these units, and the last gets exactly what is left, however
    little: a remainder cut to tenths made the estimate fall when a severity rose."""
    return hours.quantize(HOURS, rounding=ROUND_HALF_UP)


UNMEASURED_SIZE = "of unmeasured size: no photo outlines the part"
"""Said of a finding on a part no photo outlines, in place of how much of the part it
covers: such a part was placed by a stage or an adjuster, and its 0 coverage is no size."""
CUT_TO_WHOLE_PART_NOTE = " (hours cut: with the {part}'s other damages, a repair of all of it)"


def _why_no_hours(finding: PartFinding, part: CarPart, stray: bool, cut: bool) -> str:
    if finding.named_again:  # a stray too, but one already priced under its surer name
        return " (the same damage under another name)"
    if stray:
        return f" (a damage the {_name(part)} cannot have; an adjuster says where it belongs)"
    return f" (within the repair of all of the {_name(part)})" if cut else ""


def _operation(repairs: bool, paints: bool) -> Operation:
    if repairs and paints:
        return Operation.REPAIR_AND_REFINISH
    return Operation.REPAIR if repairs else Operation.REFINISH


def _note(lines: list[EstimateLine], note: str) -> list[EstimateLine]:
    """A finding that adds no work is named on the part's first line, not dropped silently."""
    if not lines:
        return lines
    return [replace(lines[0], description=lines[0].description + note), *lines[1:]]


def _blend_lines(
    lines: Sequence[EstimateLine], painted: set[CarPart], pricing: Pricing
) -> list[EstimateLine]:
    neighbours = pricing.rules.neighbours()
    replaced = {line.part for line in lines if line.operation is Operation.REPLACE}
    skip = painted | replaced | set(pricing.rules.blend.exclude_parts)
    skip |= parts_not_fitted(pricing.body_type)
    confidence = {line.part: line.confidence for line in lines if line.paint_hours > 0}
    blended: list[EstimateLine] = []
    done: set[CarPart] = set()
    for source in [p for p in CarPart if p in painted]:
        for part in sorted(neighbours.get(source, ()), key=list(CarPart).index):
            if part in skip or part in done or not part.is_painted_panel:
                continue
            hours = pricing.catalog.parts[part].refinish_hours * pricing.rules.blend.fraction
            if hours <= 0:
                continue
            done.add(part)
            maker = LineMaker(pricing, confidence[source], part, pricing.rules.blend.id)
            text = f"blend colour into {_name(part)} next to {_name(source)}"
            blended.append(maker.make(Operation.BLEND, text, paint_hours=hours))
    return blended


def _sum(lines: Sequence[EstimateLine]) -> Decimal:
    return sum((line.total for line in lines), ZERO)
