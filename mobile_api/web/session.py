"""Adjuster web sessions: signed, expiring tokens in a Secure, HttpOnly, SameSite cookie.

The cookie holds `base64(user id, nonce, expiry) . HMAC-SHA256(secret_key)`. Nothing in
it is secret, but nothing in it can be forged without `CDAT_SECRET_KEY`. Each session is
also a row (`web_sessions`, keyed by a hash of its nonce) read on every request: signing out
deletes it, so a copied cookie stops working too; deactivating a user ends their sessions.

CSRF: every form carries a token derived from the session nonce (HMAC), checked on every
POST. The sign-in form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mobile_api.auth import STAFF_ROLES, Role, verify_password
from mobile_api.errors import ApiError
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction

SESSION_COOKIE = "cdat_adjuster_session"
LOGIN_CSRF_COOKIE = "cdat_login_csrf"
SESSION_SECONDS = 8 * 3600
COOKIE_PATH = "/adjuster"


class NotSignedIn(ApiError):
    status = 401
    code = "not_signed_in"


class CsrfFailed(ApiError):
    status = 403
    code = "csrf_failed"


class SignInFailed(ApiError):
    status = 401
    code = "sign_in_failed"


@dataclass(frozen=True)
class WebUser:
    id: str
    email: str
    name: str
    role: Role
    nonce: str

    @property
    def label(self) -> str:
        return self.name or self.email


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: str, user_id: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_SECONDS)
    payload = _b64(json.dumps([user_id, secrets.token_hex(16), expires]).encode())
    return f"{payload}.{_mac(secret, 'session|' + payload)}"


def read(secret: str, token: str, now: float | None = None) -> tuple[str, str]:
    """(user id, nonce) of a valid, unexpired token; NotSignedIn otherwise."""
    payload, _, mac = token.partition(".")
    if not mac or not hmac.compare_digest(mac, _mac(secret, "session|" + payload)):
        raise NotSignedIn("please sign in")
    try:
        user_id, nonce, expires = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        raise NotSignedIn("please sign in") from None
    if int(expires) < (now or time.time()):
        raise NotSignedIn("your session expired: please sign in again")
    return str(user_id), str(nonce)


def csrf_token(secret: str, nonce: str) -> str:
    return _mac(secret, "csrf|" + nonce)


def check_csrf(expected: str, sent: object) -> None:
    if not isinstance(sent, str) or not sent or not hmac.compare_digest(expected, sent):
        raise CsrfFailed(
            "the form was not sent from this site or has expired (CSRF check failed): "
            "reload the page and try again"
        )


def current_user(rt: Runtime, token: str | None) -> WebUser:
    if not token:
        raise NotSignedIn("please sign in")
    user_id, nonce = read(rt.settings.secret_key, token)
    with rt.sessions() as session:
        stored = session.get(models.WebSession, _session_key(nonce))
        if stored is None or stored.user_id != user_id or stored.expires_at < _utcnow():
            raise NotSignedIn("you signed out or your session ended: please sign in again")
        user = session.get(models.User, user_id)
        if user is None or not user.active or Role(user.role) not in STAFF_ROLES:
            raise NotSignedIn("this account cannot use the adjuster workspace")
        return WebUser(user.id, user.email, user.name, Role(user.role), nonce)


def sign_out(rt: Runtime, token: str | None) -> None:
    """End the session server-side: its cookie no longer works, wherever it was copied to."""
    if not token:
        return
    try:
        _, nonce = read(rt.settings.secret_key, token)
    except NotSignedIn:
        return
    with transaction(rt.sessions) as session:
        session.execute(
            delete(models.WebSession).where(models.WebSession.id == _session_key(nonce))
        )


def end_sessions(session: Session, user_id: str) -> int:
    """End every session of a user (deactivation, a stolen laptop)."""
    result = session.execute(delete(models.WebSession).where(models.WebSession.user_id == user_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _session_key(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def sign_in(rt: Runtime, email: str, password: str) -> str:
    """A session token for a staff user whose password matches; SignInFailed otherwise."""
    with rt.sessions() as session:
        user = session.scalar(select(models.User).where(models.User.email == email.strip()))
        stored = user.password_hash if user is not None else None
        # Same work whether or not the user exists, so timing does not reveal accounts.
        matches = verify_password(password, stored or _DUMMY_HASH)
        if (
            user is None
            or not stored
            or not matches
            or not user.active
            or Role(user.role) not in STAFF_ROLES
        ):
            raise SignInFailed("wrong email or password", field="email")
        user_id = user.id
    token = issue(rt.settings.secret_key, user_id)
    _, nonce = read(rt.settings.secret_key, token)
    now = _utcnow()
    with transaction(rt.sessions) as session:
        session.execute(
            delete(models.WebSession).where(
                models.WebSession.user_id == user_id, models.WebSession.expires_at < now
            )
        )
        session.add(
            models.WebSession(
                id=_session_key(nonce),
                user_id=user_id,
                expires_at=now + timedelta(seconds=SESSION_SECONDS),
            )
        )
    return token


_DUMMY_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64
