"""The cross-claim photo-hash index in the database: `cdat.phash`'s multi-index
scheme with one indexed column per 16-bit chunk, so a lookup reads a handful of
index ranges, not every stored photo."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cdat.phash import HashMatch, hamming, hash_chunks, parse_hash, probe_plan
from mobile_api.storage import models

_CHUNK_COLUMNS = (
    models.PhotoHash.chunk0,
    models.PhotoHash.chunk1,
    models.PhotoHash.chunk2,
    models.PhotoHash.chunk3,
)


class SqlPhotoHashIndex:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, photo_ref: str, claim_id: str, hash_hex: str) -> None:
        c0, c1, c2, c3 = hash_chunks(hash_hex)
        row = models.PhotoHash(
            photo_id=photo_ref,
            claim_id=claim_id,
            hash_hex=hash_hex.lower(),
            chunk0=c0,
            chunk1=c1,
            chunk2=c2,
            chunk3=c3,
        )
        self.session.merge(row)

    def near(self, hash_hex: str, max_distance: int, exclude_claim: str | None) -> list[HashMatch]:
        query_value = parse_hash(hash_hex)
        found: dict[str, HashMatch] = {}
        for index, values in probe_plan(hash_hex, max_distance):
            statement = select(models.PhotoHash).where(_CHUNK_COLUMNS[index].in_(values))
            if exclude_claim is not None:
                statement = statement.where(models.PhotoHash.claim_id != exclude_claim)
            for row in self.session.scalars(statement):
                distance = hamming(query_value, parse_hash(row.hash_hex))
                if distance <= max_distance:
                    found[row.photo_id] = HashMatch(
                        row.photo_id, row.claim_id, row.hash_hex, distance
                    )
        return sorted(found.values(), key=lambda match: (match.distance, match.photo_ref))
