"""Idempotency-Key handling: a retried request gets the first answer, and only its maker does.

A record is found by an HMAC, under the server's secret, of the scope, the caller, the
request's fingerprint and the key. A key sent by another caller or with another request is
therefore just another record: the answer never reveals that someone used a key. Claim
creation has no authenticated caller, so there the key and the identical request are the
proof of having made it; clients should send a random key (a UUID).

The stored answer is sealed with AES-256-GCM under a key derived from the raw
Idempotency-Key, which is never stored: a copy of the database cannot open the claim tokens
and webhook secrets a replay carries. Records expire after `idempotency_ttl_seconds`.

Concurrent retries: the record row is inserted before the action runs, in the action's
transaction. A concurrent retry's insert waits on that row (PostgreSQL's unique index,
SQLite's write lock), fails on the key once the first request commits, and replays its
answer; if the first request fails, nothing was stored and the retry runs the action itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobile_api.errors import ValidationFailed
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction

Outcome = tuple[int, dict[str, Any]]
HEADER = "Idempotency-Key"
MIN_LENGTH, MAX_LENGTH = 16, 255
MIN_BITS = 33
"""Least estimated entropy of a key (`estimated_bits`): a replayed answer (a claim token)
reaches whoever sends the same key with the same request, so the key must not be guessable.
`abcd` four times scores 32; random 16 hex digits score 33 or more (all of 100,000 tried)."""
_RETRIES = 3
_ADVICE = "send a random UUID per operation, the same one on each retry"


def parse_key(value: str | None) -> str | None:
    """The key of a request, None when it sent none; an empty, odd or guessable key is refused."""
    if value is None:
        return None
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH or not all("!" <= c <= "~" for c in value):
        raise ValidationFailed(
            f"{HEADER} must be {MIN_LENGTH} to {MAX_LENGTH} visible ASCII characters ({_ADVICE})",
            field=HEADER,
        )
    if estimated_bits(value) < MIN_BITS or _repeats(value):
        raise ValidationFailed(
            f"{HEADER} is too easy to guess (a repeated character or pattern); {_ADVICE}",
            field=HEADER,
        )
    return value


def estimated_bits(key: str) -> float:
    """The key's length times the entropy of its character frequencies: 0 for `aaaa...`,
    16 for `abab...` of 16, about 150 for a UUID."""
    counts = Counter(key).values()
    return -sum(n * math.log2(n / len(key)) for n in counts)


def _repeats(key: str) -> bool:
    """A key that is a shorter piece over and over (`abab...`, `abcdabcd...`)."""
    size = len(key)
    return any(key == (key[:p] * (size // p + 1))[:size] for p in range(1, size // 2 + 1))


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Request:
    """What makes two requests the same one."""

    scope: str
    """The operation, with the resource it acts on (e.g. `claims.submit:<claim id>`)."""
    caller: str
    """Who asks: a claim or user id; empty where nobody is authenticated yet."""
    key: str
    payload_fingerprint: str

    def _derive(self, secret: str, purpose: str) -> bytes:
        message = "|".join(
            ("cdat-idempotency-v1", purpose, self.scope, self.caller, self.payload_fingerprint)
        )
        return hmac.new(secret.encode(), f"{message}|{self.key}".encode(), "sha256").digest()

    def lookup(self, secret: str) -> str:
        return self._derive(secret, "lookup").hex()

    def sealing_key(self, secret: str) -> bytes:
        return self._derive(secret, "seal")


def request_for(scope: str, caller: str, key: str | None, payload: Any) -> Request | None:
    """The request a retry must match, or None when the client sent no key."""
    parsed = parse_key(key)
    return Request(scope, caller, parsed, fingerprint(payload)) if parsed else None


def run_once(rt: Runtime, request: Request | None, action: Callable[[Session], Outcome]) -> Outcome:
    """Run `action` in a transaction; with a key, once: a retry replays the first answer."""
    if request is None:
        with transaction(rt.sessions) as session:
            return action(session)
    secret = rt.settings.secret_key
    lookup = request.lookup(secret)
    for _ in range(_RETRIES):
        try:
            with transaction(rt.sessions) as session:
                record = _claim_record(session, request.scope, lookup, rt)
                status, body = action(session)
                record.status_code = status
                record.sealed = _seal(request.sealing_key(secret), lookup, body)
                return status, body
        except IntegrityError:
            # A concurrent request with this key committed first: answer as it did.
            replayed = _replay(rt, request, lookup)
            if replayed is not None:
                return replayed
    raise RuntimeError(f"{HEADER} record kept changing under {_RETRIES} attempts")


def _claim_record(
    session: Session, scope: str, lookup: str, rt: Runtime
) -> models.IdempotencyRecord:
    now = datetime.now(UTC)
    session.execute(
        delete(models.IdempotencyRecord).where(
            models.IdempotencyRecord.key_hash == lookup,
            models.IdempotencyRecord.expires_at < now,
        )
    )
    record = models.IdempotencyRecord(
        key_hash=lookup,
        scope=scope,
        status_code=0,
        sealed="",
        created_at=now,
        expires_at=now + timedelta(seconds=rt.settings.idempotency_ttl_seconds),
    )
    session.add(record)
    session.flush()  # waits here for a concurrent request holding the same key
    return record


def _replay(rt: Runtime, request: Request, lookup: str) -> Outcome | None:
    with rt.sessions() as session:
        record = session.get(models.IdempotencyRecord, lookup)
        if record is None or record.expires_at < datetime.now(UTC):
            return None
        status, sealed = record.status_code, record.sealed
    body = _unseal(request.sealing_key(rt.settings.secret_key), lookup, sealed)
    return status, body


def forget(rt: Runtime, request: Request | None) -> None:
    """Drop a stored answer that no longer holds (its work was undone), so a retry runs anew."""
    if request is None:
        return
    lookup = request.lookup(rt.settings.secret_key)
    with transaction(rt.sessions) as session:
        session.execute(
            delete(models.IdempotencyRecord).where(models.IdempotencyRecord.key_hash == lookup)
        )


def purge_expired(rt: Runtime) -> int:
    with transaction(rt.sessions) as session:
        result = session.execute(
            delete(models.IdempotencyRecord).where(
                models.IdempotencyRecord.expires_at < datetime.now(UTC)
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _seal(key: bytes, lookup: str, body: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(body).encode(), lookup.encode())
    return base64.b64encode(nonce + sealed).decode()


def _unseal(key: bytes, lookup: str, sealed: str) -> dict[str, Any]:
    raw = base64.b64decode(sealed)
    try:
        plain = AESGCM(key).decrypt(raw[:12], raw[12:], lookup.encode())
    except InvalidTag as exc:  # only a changed secret key or a tampered row gets here
        raise RuntimeError("a stored idempotent answer cannot be opened") from exc
    body: dict[str, Any] = json.loads(plain)
    return body
