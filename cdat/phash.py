"""Near-duplicate photo lookup over 64-bit perceptual hashes (multi-index hashing).

A hash is split into `num_chunks` equal chunks (4 x 16 bits by default). By the
pigeonhole principle, two hashes within Hamming distance d differ in at most
floor(d / num_chunks) bits in at least one chunk. So a lookup probes, per chunk,
every value within that radius of the query's chunk, and only hashes sharing one
probed chunk value are compared in full. With 16-bit chunks and d <= 11 this is at
most 4 x 137 bucket reads over ~N/65536 entries each.

A database backs the same scheme with one indexed integer column per chunk
(`hash_chunks`) and a query per chunk for the values from `chunk_probes`
(``WHERE chunk_i IN (...)``), then `hamming` on the candidates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

HASH_BITS = 64
DEFAULT_CHUNKS = 4


class InvalidHash(ValueError):
    pass


def parse_hash(hash_hex: str) -> int:
    """A 16-hex-digit perceptual hash as an int; raises InvalidHash otherwise."""
    if len(hash_hex) != HASH_BITS // 4:
        raise InvalidHash(f"perceptual hash must be 16 hex digits, got {hash_hex!r}")
    try:
        return int(hash_hex, 16)
    except ValueError as exc:
        raise InvalidHash(f"perceptual hash must be 16 hex digits, got {hash_hex!r}") from exc


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _chunk_bits(num_chunks: int) -> int:
    if num_chunks < 1 or HASH_BITS % num_chunks:
        raise ValueError(f"num_chunks must divide {HASH_BITS}, got {num_chunks}")
    return HASH_BITS // num_chunks


def hash_chunks(hash_hex: str, num_chunks: int = DEFAULT_CHUNKS) -> tuple[int, ...]:
    """The hash split into `num_chunks` unsigned ints, most significant chunk first."""
    value, bits = parse_hash(hash_hex), _chunk_bits(num_chunks)
    mask = (1 << bits) - 1
    return tuple((value >> (bits * (num_chunks - 1 - i))) & mask for i in range(num_chunks))


def chunk_radius(max_distance: int, num_chunks: int = DEFAULT_CHUNKS) -> int:
    """Bits a chunk may differ by and still be the pigeonhole chunk of a match."""
    if max_distance < 0:
        raise ValueError("max_distance must not be negative")
    return max_distance // num_chunks


def chunk_probes(chunk: int, radius: int, bits: int) -> Iterator[int]:
    """Every `bits`-wide value within Hamming `radius` of `chunk`, `chunk` first."""
    for flips in range(radius + 1):
        for positions in combinations(range(bits), flips):
            value = chunk
            for position in positions:
                value ^= 1 << position
            yield value


def probe_plan(
    hash_hex: str, max_distance: int, num_chunks: int = DEFAULT_CHUNKS
) -> list[tuple[int, list[int]]]:
    """(chunk index, values to look up) per chunk: the candidate query for any backend."""
    radius, bits = chunk_radius(max_distance, num_chunks), _chunk_bits(num_chunks)
    return [
        (index, list(chunk_probes(chunk, radius, bits)))
        for index, chunk in enumerate(hash_chunks(hash_hex, num_chunks))
    ]


@dataclass(frozen=True)
class HashMatch:
    photo_ref: str
    claim_id: str
    hash_hex: str
    distance: int


class PhotoHashIndex(Protocol):
    """All stored photos' perceptual hashes, for cross-claim duplicate detection."""

    def add(self, photo_ref: str, claim_id: str, hash_hex: str) -> None:
        """Store a photo's hash; adding the same `photo_ref` again replaces it."""
        ...

    def near(self, hash_hex: str, max_distance: int, exclude_claim: str | None) -> list[HashMatch]:
        """Stored photos within `max_distance` bits, nearest first, skipping `exclude_claim`."""
        ...


class InMemoryPhotoHashIndex:
    """Multi-index hashing in process memory: fine for tests, workers and benchmarks."""

    def __init__(self, num_chunks: int = DEFAULT_CHUNKS) -> None:
        self.num_chunks = num_chunks
        self._bits = _chunk_bits(num_chunks)
        self._mask = (1 << self._bits) - 1
        self._tables: list[defaultdict[int, list[int]]] = [
            defaultdict(list) for _ in range(num_chunks)
        ]
        self._hashes: list[int] = []
        self._refs: list[str] = []
        self._claims: list[str] = []
        self._live: list[bool] = []
        self._by_ref: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_ref)

    def _chunks(self, value: int) -> list[int]:
        bits, n = self._bits, self.num_chunks
        return [(value >> (bits * (n - 1 - i))) & self._mask for i in range(n)]

    def add(self, photo_ref: str, claim_id: str, hash_hex: str) -> None:
        value = parse_hash(hash_hex)
        previous = self._by_ref.get(photo_ref)
        if previous is not None:
            if self._hashes[previous] == value and self._claims[previous] == claim_id:
                return
            self._live[previous] = False
        entry = len(self._hashes)
        self._hashes.append(value)
        self._refs.append(photo_ref)
        self._claims.append(claim_id)
        self._live.append(True)
        self._by_ref[photo_ref] = entry
        for table, chunk in zip(self._tables, self._chunks(value), strict=True):
            table[chunk].append(entry)

    def near(self, hash_hex: str, max_distance: int, exclude_claim: str | None) -> list[HashMatch]:
        value = parse_hash(hash_hex)
        radius = chunk_radius(max_distance, self.num_chunks)
        seen: set[int] = set()
        matches: list[HashMatch] = []
        for table, chunk in zip(self._tables, self._chunks(value), strict=True):
            for probe in chunk_probes(chunk, radius, self._bits):
                for entry in table.get(probe, ()):
                    if entry in seen:
                        continue
                    seen.add(entry)
                    match = self._check(entry, value, max_distance, exclude_claim)
                    if match is not None:
                        matches.append(match)
        matches.sort(key=lambda m: (m.distance, m.claim_id, m.photo_ref))
        return matches

    def _check(
        self, entry: int, value: int, max_distance: int, exclude_claim: str | None
    ) -> HashMatch | None:
        if not self._live[entry] or self._claims[entry] == exclude_claim:
            return None
        distance = hamming(self._hashes[entry], value)
        if distance > max_distance:
            return None
        return HashMatch(
            self._refs[entry], self._claims[entry], f"{self._hashes[entry]:016x}", distance
        )
