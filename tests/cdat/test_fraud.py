"""Each fraud signal fires on its evidence and stays quiet without it."""

from __future__ import annotations

from datetime import datetime

import pytest

from cdat.claims import GeoPoint
from cdat.fraud import FraudPolicy, detect_fraud_signals, haversine_km
from cdat.phash import InMemoryPhotoHashIndex
from tests.cdat.conftest import MUMBAI, context, meta, photo

POLICY = FraudPolicy()
HASH = "0f0f0f0f0f0f0f0f"


def _flip(hash_hex: str, bits: int) -> str:
    return f"{int(hash_hex, 16) ^ ((1 << bits) - 1):016x}"


def _codes(analyses, ctx, index=None, policy=POLICY) -> list[str]:
    signals = detect_fraud_signals(analyses, ctx, index or InMemoryPhotoHashIndex(), policy)
    return [s.code for s in signals]


def test_clean_claim_has_no_signals() -> None:
    assert _codes([photo()], context()) == []


def test_photo_of_another_claim_is_found_with_evidence() -> None:
    # given the index holds a near-identical photo of claim-0
    index = InMemoryPhotoHashIndex()
    index.add("old-photo", "claim-0", _flip(HASH, POLICY.duplicate_max_distance))
    # when claim-1's photo is checked
    signals = detect_fraud_signals([photo(phash=HASH)], context(), index, POLICY)
    # then the signal names the other claim, photo and distance
    assert [s.code for s in signals] == ["duplicate_photo_other_claim"]
    evidence = signals[0].evidence
    assert evidence["other_claim_id"] == "claim-0"
    assert evidence["other_photo_id"] == "old-photo"
    assert evidence["hamming_distance"] == str(POLICY.duplicate_max_distance)


def test_distant_hash_and_same_claim_do_not_match() -> None:
    index = InMemoryPhotoHashIndex()
    index.add("far", "claim-0", _flip(HASH, POLICY.duplicate_max_distance + 1))
    index.add("mine", "claim-1", HASH)
    assert _codes([photo(phash=HASH)], context(), index) == []


def test_same_photo_twice_in_a_claim() -> None:
    analyses = [photo("p1", HASH), photo("p2", _flip(HASH, 2))]
    ctx = context(photos=(meta("p1"), meta("p2")))
    signals = detect_fraud_signals(analyses, ctx, InMemoryPhotoHashIndex(), POLICY)
    assert [(s.code, s.photo_id, s.evidence["other_photo_id"]) for s in signals] == [
        ("duplicate_photo_in_claim", "p2", "p1")
    ]


def test_identical_file_bytes_in_a_claim() -> None:
    ctx = context(photos=(meta("p1", sha256="abc"), meta("p2", sha256="abc")))
    analyses = [photo("p1", None), photo("p2", None)]
    assert _codes(analyses, ctx) == ["duplicate_photo_in_claim"]


def test_different_photos_in_a_claim_are_not_duplicates() -> None:
    analyses = [photo("p1", HASH), photo("p2", _flip(HASH, 40))]
    assert _codes(analyses, context(photos=(meta("p1"), meta("p2")))) == []


@pytest.mark.parametrize(
    ("captured", "expected"),
    [
        (None, ["capture_time_missing"]),
        (datetime(2025, 2, 27, 23, 0), ["captured_before_loss"]),
        (datetime(2025, 2, 28, 23, 0), []),  # within the one-day grace
        (datetime(2025, 3, 31, 9, 0), []),
        (datetime(2025, 4, 1, 9, 0), ["captured_long_after_loss"]),
    ],
)
def test_capture_time(captured, expected) -> None:
    assert _codes([photo()], context(photos=(meta(captured_at=captured),))) == expected


def test_missing_capture_time_can_be_ignored_by_policy() -> None:
    lenient = POLICY.model_copy(update={"flag_missing_capture_time": False})
    assert _codes([photo()], context(photos=(meta(captured_at=None),)), policy=lenient) == []


def test_location_far_from_loss() -> None:
    pune = GeoPoint(18.5204, 73.8567)
    signals = detect_fraud_signals(
        [photo()], context(photos=(meta(location=pune),)), InMemoryPhotoHashIndex(), POLICY
    )
    assert [s.code for s in signals] == ["location_far_from_loss"]
    assert float(signals[0].evidence["distance_km"]) > POLICY.location_max_km


def test_location_near_or_unknown_is_quiet() -> None:
    nearby = GeoPoint(MUMBAI.latitude + 0.1, MUMBAI.longitude)
    assert _codes([photo()], context(photos=(meta(location=nearby),))) == []
    assert _codes([photo()], context(photos=(meta(location=None),))) == []
    assert (
        _codes([photo()], context(loss_location=None, photos=(meta(location=GeoPoint(0, 0)),)))
        == []
    )


def test_haversine_one_degree_on_the_equator() -> None:
    import math

    expected = 2 * math.pi * 6371.0088 / 360
    assert haversine_km(GeoPoint(0, 0), GeoPoint(0, 1)) == pytest.approx(expected, rel=1e-9)
    assert haversine_km(MUMBAI, MUMBAI) == 0
