"""Multi-index hashing finds exactly what a brute-force scan finds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdat.phash import (
    InMemoryPhotoHashIndex,
    InvalidHash,
    chunk_probes,
    hamming,
    hash_chunks,
    probe_plan,
)

hashes = st.integers(0, 2**64 - 1).map(lambda v: f"{v:016x}")


@given(hashes)
def test_chunks_reassemble_the_hash(hash_hex: str) -> None:
    for n in (1, 2, 4, 8):
        chunks = hash_chunks(hash_hex, n)
        bits = 64 // n
        value = 0
        for chunk in chunks:
            assert 0 <= chunk < 2**bits
            value = (value << bits) | chunk
        assert f"{value:016x}" == hash_hex


def test_probes_cover_the_radius_exactly() -> None:
    probes = list(chunk_probes(0b1010, 2, 16))
    assert len(probes) == len(set(probes)) == 1 + 16 + 120
    assert all(hamming(p, 0b1010) <= 2 for p in probes)
    assert [len(values) for _, values in probe_plan("00" * 8, 7)] == [17] * 4


@pytest.mark.parametrize("bad", ["", "123", "zzzzzzzzzzzzzzzz", "0" * 17])
def test_invalid_hash_is_rejected(bad: str) -> None:
    with pytest.raises(InvalidHash):
        InMemoryPhotoHashIndex().add("p", "c", bad)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32), max_distance=st.integers(0, 12), chunks=st.sampled_from([2, 4, 8])
)
def test_near_equals_brute_force(seed: int, max_distance: int, chunks: int) -> None:
    # given stored hashes clustered around a few centres (so near matches exist)
    rng = random.Random(seed)
    centres = [rng.getrandbits(64) for _ in range(3)]
    stored = []
    index = InMemoryPhotoHashIndex(num_chunks=chunks)
    for i in range(300):
        value = rng.choice(centres)
        for _ in range(rng.randint(0, 14)):
            value ^= 1 << rng.randrange(64)
        ref, claim = f"p{i}", f"c{i % 7}"
        stored.append((ref, claim, value))
        index.add(ref, claim, f"{value:016x}")
    query = centres[0] ^ (1 << rng.randrange(64))
    # when queried, excluding one claim
    found = index.near(f"{query:016x}", max_distance, exclude_claim="c0")
    # then the result is exactly the brute-force answer, nearest first
    expected = {
        (ref, hamming(value, query))
        for ref, claim, value in stored
        if claim != "c0" and hamming(value, query) <= max_distance
    }
    assert {(m.photo_ref, m.distance) for m in found} == expected
    assert [m.distance for m in found] == sorted(m.distance for m in found)


def test_adding_a_photo_again_replaces_it() -> None:
    index = InMemoryPhotoHashIndex()
    index.add("p1", "c1", "ffffffffffffffff")
    index.add("p1", "c1", "ffffffffffffffff")
    assert len(index.near("ffffffffffffffff", 0, None)) == 1
    index.add("p1", "c2", "0000000000000000")
    assert index.near("ffffffffffffffff", 3, None) == []
    assert [m.claim_id for m in index.near("0000000000000000", 0, None)] == ["c2"]
    assert len(index) == 1
