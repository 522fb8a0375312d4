"""Credentials: claim-scoped tokens for policyholders, API tokens for adjusters.

Only SHA-256 hashes of tokens are stored; a token is shown once, when it is made (a retry
with its Idempotency-Key replays it from a sealed record: see `mobile_api.claims.idempotency`).
A claim's webhook secret is a signing key the service needs, so it is kept as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import Enum

CLAIM_TOKEN_PREFIX = "cdat_claim_"
STAFF_TOKEN_PREFIX = "cdat_staff_"


class Role(str, Enum):
    POLICYHOLDER = "policyholder"
    ADJUSTER = "adjuster"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.ADJUSTER, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    role: Role
    subject: str
    """Claim id for a policyholder, user id for staff."""
    display: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def new_id() -> str:
    return secrets.token_hex(12)


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt_hex)), stored)
