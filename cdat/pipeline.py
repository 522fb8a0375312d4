"""From findings to a claim decision.

    policy = load_policy(settings)                 # once per worker process
    # newly analysed photos (the assessment job, `cdat assess`):
    signals = fraud_signals(analyses, context, hash_index, history, policy)
    assessment = assess_claim(analyses, Corrections.of(previous), context, signals,
                              model_versions, policy)
    # an adjuster's correction (same photos, same signals and models):
    assessment = assess_claim(previous.photos, edit.corrections, context,
                              previous.fraud_signals, previous.model_versions, policy)

`assess_claim` is the one place per-photo damages and an adjuster's corrections become
merged findings, an estimate, a total-loss check and a triage; the service only loads
its inputs and stores what it returns.

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

from cdat.assessment import Assessment, FraudSignal
from cdat.catalog import Catalog, classify_vehicle
from cdat.claims import ClaimContext
from cdat.corrections import Corrections
from cdat.datafiles import load_model
from cdat.errors import ConfigurationError
from cdat.estimate import build_estimate
from cdat.findings import PhotoAnalysis
from cdat.fraud import detect_fraud_signals, standing_signals
from cdat.merge import as_fitted_photo, merge_findings
from cdat.phash import PhotoHashIndex
from cdat.policy_checks import check_policy
from cdat.pricing import Pricing
from cdat.rules import RuleBook
from cdat.settings import Settings
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
    check_policy(rules, catalog, region, rules_file, remember_in=settings.cache_dir)
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


def fraud_signals(
    analyses: Sequence[PhotoAnalysis],
    context: ClaimContext,
    hash_index: PhotoHashIndex,
    history: Sequence[tuple[int, Sequence[FraudSignal]]],
    policy: AssessmentPolicy,
) -> tuple[FraudSignal, ...]:
    """The fraud signals of newly analysed photos: theirs against every other claim's,
    and every signal an earlier version of the claim raised that no adjuster has cleared
    (`history`, as `cdat.fraud.standing_signals` reads it).

    Side effect: after looking for duplicates in other claims, this claim's photo hashes
    are added to `hash_index` (keyed by photo id, so a retried job adds nothing new).
    """
    signals = detect_fraud_signals(analyses, context, hash_index, policy.triage.fraud)
    for analysis in analyses:
        if analysis.perceptual_hash is not None:
            hash_index.add(analysis.photo_id, context.claim_id, analysis.perceptual_hash)
    return standing_signals(signals, history)


def assess_claim(
    analyses: Sequence[PhotoAnalysis],
    corrections: Corrections,
    context: ClaimContext,
    signals: Sequence[FraudSignal],
    model_versions: Mapping[str, str],
    policy: AssessmentPolicy,
) -> Assessment:
    """The one way a claim is assessed: the per-photo damages with the adjuster's
    corrections kept over them, merged across photos, priced, checked for a total loss
    and triaged.

    The corrections stay on the result (reviewed photos, `operation_overrides`), so the
    next assessment, after an edit or after more photos, keeps them too.
    """
    body_type = context.vehicle.body_type
    photos = tuple(as_fitted_photo(p, body_type) for p in corrections.kept_on(analyses))
    merged = merge_findings(photos, body_type)
    vehicle = classify_vehicle(context.vehicle, policy.catalog.vehicle_classes)
    pricing = Pricing(
        policy.catalog, policy.rules, policy.region, vehicle, context.vehicle.body_type
    )
    estimate = build_estimate(merged, pricing, corrections.overrides)
    total_loss = check_total_loss(
        estimate,
        context.vehicle,
        vehicle.vehicle_class,
        context.loss_date,
        policy.catalog,
        policy.region,
    )
    decision = triage(photos, merged, estimate, total_loss, signals, policy.triage)
    return Assessment(
        photos=photos,
        findings=merged,
        model_versions=dict(model_versions),
        estimate=estimate,
        total_loss=total_loss,
        triage=decision,
        fraud_signals=tuple(signals),
        operation_overrides=dict(corrections.overrides),
    )
