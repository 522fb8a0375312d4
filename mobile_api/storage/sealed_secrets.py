"""Secrets the service must read back (a claim's webhook signing key), sealed at rest.

AES-256-GCM under a key derived from `CDAT_SECRET_KEY`, bound to the claim id: a copy of
the database alone cannot sign webhooks as us, and a sealed value moved to another claim
does not open. Values stored before sealing existed (no `v1:` prefix) read as they are until
migration 0004 seals them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"
_PURPOSE = b"cdat-webhook-secret-v1"


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()


def seal(secret_key: str, claim_id: str, plain: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret_key)).encrypt(nonce, plain.encode(), claim_id.encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def unseal(secret_key: str, claim_id: str, stored: str) -> str:
    """The plain value; a value from before sealing is returned as it is."""
    if not is_sealed(stored):
        return stored
    raw = base64.b64decode(stored[len(PREFIX) :])
    try:
        return AESGCM(_key(secret_key)).decrypt(raw[:12], raw[12:], claim_id.encode()).decode()
    except InvalidTag as exc:  # only a changed secret key or a tampered row gets here
        raise RuntimeError(f"the webhook secret of claim {claim_id} cannot be opened") from exc
