"""From findings to a claim decision.

    policy = load_policy(settings)            # once per worker process
    assessment = build_assessment(analyses, findings, context, model_versions,
                                  policy, hash_index)          # the assessment job
    assessment = reprice(previous, analyses, overrides, context, policy)  # a correction
    assessment = keeping_corrections(fresh, previous, context, policy)    # a re-assessment

`assess_findings` is the one place findings become an estimate, a total-loss check
and a triage; the job reaches it through `build_assessment` (which adds the fraud
signals), an adjuster's correction and a re-assessment that keeps corrections through
`reprice`, the one entry point for re-assessment.

`load_policy` reads three data files, each from `settings.catalog_dir` when it has
that file and from the shipped defaults in `cdat/data/` otherwise:

* ``catalogs/<settings.currency>.yaml``: prices, labour, tax, vehicle values (`Catalog`);
* ``rules.yaml``: repair-operation rules, blending, estimate range (`RuleBook`);
* ``triage.yaml``: straight-through policy and fraud thresholds (`TriagePolicy`).

Any problem is a `DataFileError` (a `ConfigurationError`) naming file, line and field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdat.assessment import Assessment, FraudSignal, Operation
from cdat.catalog import Catalog, classify_vehicle
from cdat.claims import ClaimContext
from cdat.corrections import has_corrections, keep_corrections
from cdat.datafiles import load_model
from cdat.errors import ConfigurationError
from cdat.estimate import Pricing, build_estimate
from cdat.findings import PartFinding, PhotoAnalysis
from cdat.fraud import detect_fraud_signals
from cdat.merge import merge_findings
from cdat.phash import PhotoHashIndex
from cdat.policy_checks import check_rules_cover_everything, check_severity_monotone
from cdat.rules import RuleBook
from cdat.settings import Settings
from cdat.taxonomy import CarPart
from cdat.total_loss import check_total_loss
from cdat.triage import TriagePolicy, triage

SHIPPED_DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class AssessmentPolicy:
    """Validated catalog, rules and triage policy for one currency and region."""

    catalog: Catalog
    rules: RuleBook
    triage: TriagePolicy
    region: str
    sources: Mapping[str, Path]
    """Which file each part of the policy came from, for the audit trail."""


def load_policy(settings: Settings) -> AssessmentPolicy:
    currency, region = settings.currency.strip().upper(), settings.region
    dirs = _data_dirs(settings.catalog_dir)
    sources = {
        "catalog": _pick(dirs, Path("catalogs") / f"{currency}.yaml"),
        "rules": _pick(dirs, Path("rules.yaml")),
        "triage": _pick(dirs, Path("triage.yaml")),
    }
    catalog, catalog_file = load_model(Catalog, sources["catalog"])
    if catalog.currency != currency:
        raise catalog_file.error(
            ("currency",), f"is {catalog.currency}, settings ask for {currency}"
        )
    if region not in catalog.regions:
        known = ", ".join(sorted(catalog.regions))
        raise catalog_file.error(
            ("regions",), f"no region {region!r} (settings.region); has {known}"
        )
    rules, rules_file = load_model(RuleBook, sources["rules"])
    policy, triage_file = load_model(TriagePolicy, sources["triage"])
    if currency not in policy.straight_through_limit:
        raise triage_file.error(("straight_through_limit",), f"no limit for currency {currency}")
    check_rules_cover_everything(rules, rules_file)
    check_severity_monotone(rules, catalog, region, rules_file)
    return AssessmentPolicy(catalog, rules, policy, region, sources)


def _data_dirs(catalog_dir: Path | None) -> list[Path]:
    if catalog_dir is None:
        return [SHIPPED_DATA_DIR]
    if not catalog_dir.is_dir():
        raise ConfigurationError(f"catalog_dir {catalog_dir} is not a directory")
    return [catalog_dir, SHIPPED_DATA_DIR]


def _pick(dirs: Sequence[Path], relative: Path) -> Path:
    for directory in dirs:
        if (directory / relative).is_file():
            return directory / relative
    searched = ", ".join(str(d) for d in dirs)
    raise ConfigurationError(f"no {relative} in {searched}")


def build_assessment(
    analyses: Sequence[PhotoAnalysis],
    findings: Sequence[PartFinding],
    context: ClaimContext,
    model_versions: Mapping[str, str],
    policy: AssessmentPolicy,
    hash_index: PhotoHashIndex,
) -> Assessment:
    """Estimate, total-loss check, fraud signals and triage for one claim.

    Side effect: after looking for duplicates in other claims, this claim's photo
    hashes are added to `hash_index` (keyed by photo id, so a retried job adds nothing new).
    """
    signals = detect_fraud_signals(analyses, context, hash_index, policy.triage.fraud)
    for analysis in analyses:
        if analysis.perceptual_hash is not None:
            hash_index.add(analysis.photo_id, context.claim_id, analysis.perceptual_hash)
    return assess_findings(analyses, context, signals, policy, model_versions, findings=findings)


def assess_findings(
    analyses: Sequence[PhotoAnalysis],
    context: ClaimContext,
    signals: Sequence[FraudSignal],
    policy: AssessmentPolicy,
    model_versions: Mapping[str, str],
    overrides: Mapping[CarPart, Operation] | None = None,
    findings: Sequence[PartFinding] | None = None,
) -> Assessment:
    """Estimate, total-loss check and triage of per-photo damages (merged unless given).

    `overrides` are an adjuster's operations per part; they stay on the result so the
    next re-pricing (a correction, or a re-assessment after more photos) keeps them.
    """
    merged = tuple(findings) if findings is not None else merge_findings(analyses)
    vehicle = classify_vehicle(context.vehicle, policy.catalog.vehicle_classes)
    pricing = Pricing(policy.catalog, policy.rules, policy.region, vehicle)
    estimate = build_estimate(merged, pricing, overrides)
    total_loss = check_total_loss(
        estimate,
        context.vehicle,
        vehicle.vehicle_class,
        context.loss_date,
        policy.catalog,
        policy.region,
    )
    decision = triage(analyses, merged, estimate, total_loss, signals, policy.triage)
    return Assessment(
        photos=tuple(analyses),
        findings=merged,
        model_versions=dict(model_versions),
        estimate=estimate,
        total_loss=total_loss,
        triage=decision,
        fraud_signals=tuple(signals),
        operation_overrides=dict(overrides or {}),
    )


def reprice(
    base: Assessment,
    analyses: Sequence[PhotoAnalysis],
    overrides: Mapping[CarPart, Operation],
    context: ClaimContext,
    policy: AssessmentPolicy,
) -> Assessment:
    """Re-assess `base` with other per-photo damages and the adjuster's part operations.

    The one entry point for re-assessment, used for an adjuster's correction and for a new
    assessment that keeps earlier corrections: `base`'s fraud signals and model versions
    stay, since neither depends on the findings.
    """
    return assess_findings(
        analyses, context, base.fraud_signals, policy, base.model_versions, overrides
    )


def keeping_corrections(
    fresh: Assessment,
    previous: Assessment | None,
    context: ClaimContext,
    policy: AssessmentPolicy,
) -> Assessment:
    """`fresh` with the corrections an adjuster made on `previous` carried over.

    Every photo the adjuster reviewed that is still assessed keeps the adjuster's damages,
    and the part operations they chose stay (`keep_corrections`); with no corrections,
    `fresh` is returned as it is.
    """
    if previous is None or not has_corrections(previous):
        return fresh
    photos, overrides = keep_corrections(previous, fresh.photos)
    return reprice(fresh, photos, overrides, context, policy)
