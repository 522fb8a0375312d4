"""Shared builders for the estimating, triage and fraud tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cdat.claims import BodyType, ClaimContext, GeoPoint, PhotoMeta, Vehicle
from cdat.findings import Evidence, PartFinding, PhotoAnalysis
from cdat.pipeline import AssessmentPolicy, load_policy
from cdat.settings import Settings
from cdat.taxonomy import CarPart, DamageType, Severity

LOSS_DATE = date(2025, 3, 1)
MUMBAI = GeoPoint(19.0760, 72.8777)


def settings(**overrides: object) -> Settings:
    values: dict[str, Any] = {"currency": "INR", "region": "default", "catalog_dir": None}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def inr_policy() -> AssessmentPolicy:
    return load_policy(settings())


@pytest.fixture(scope="session")
def usd_policy() -> AssessmentPolicy:
    return load_policy(settings(currency="USD"))


def finding(
    part: CarPart | None = CarPart.FRONT_LEFT_DOOR,
    damage: DamageType = DamageType.DENT,
    severity: Severity = Severity.MODERATE,
    confidence: float = 0.9,
    coverage: float = 0.2,
    photo_id: str = "p1",
) -> PartFinding:
    return PartFinding(
        part, damage, severity, confidence, coverage, (Evidence(photo_id, confidence, 0),)
    )


def photo(
    photo_id: str = "p1", phash: str | None = "0f0f0f0f0f0f0f0f", **kw: object
) -> PhotoAnalysis:
    return PhotoAnalysis(photo_id=photo_id, width=640, height=480, perceptual_hash=phash, **kw)  # type: ignore[arg-type]


def meta(
    photo_id: str = "p1",
    captured_at: datetime | None = datetime(2025, 3, 1, 15, 30),
    location: GeoPoint | None = MUMBAI,
    sha256: str | None = None,
) -> PhotoMeta:
    return PhotoMeta(photo_id, sha256 or f"sha-{photo_id}", captured_at, location)


def context(
    claim_id: str = "claim-1",
    photos: tuple[PhotoMeta, ...] = (),
    vehicle: Vehicle | None = None,
    loss_location: GeoPoint | None = MUMBAI,
) -> ClaimContext:
    car = vehicle or Vehicle(
        "Maruti Suzuki", "Swift", 2021, BodyType.HATCHBACK, None, Decimal(550000)
    )
    return ClaimContext(claim_id, car, LOSS_DATE, loss_location, photos or (meta(),))


def shipped_data_dir() -> Path:
    from cdat.pipeline import SHIPPED_DATA_DIR

    return SHIPPED_DATA_DIR


def sedan_pricing(policy: AssessmentPolicy) -> Any:
    """Pricing of a 2020 sedan by `policy`'s catalog, rules and region."""
    from cdat.catalog import classify_vehicle
    from cdat.pricing import Pricing

    vehicle = Vehicle("Maruti", "Swift", 2020, BodyType.SEDAN)
    decided = classify_vehicle(vehicle, policy.catalog.vehicle_classes)
    return Pricing(policy.catalog, policy.rules, policy.region, decided, BodyType.SEDAN)
