"""Who may use the capture page: one-time links and the claimant's session cookie.

A claimant gets in either by opening a claim on the start page or by redeeming a one-time
link that staff made for an existing claim. Both end in the same place: a random session
token in a Secure, HttpOnly, SameSite=Strict cookie scoped to /capture, stored only as its
SHA-256, opening that one claim until it expires. No claim token ever reaches the browser,
and the link's secret is worthless once redeemed, so neither history nor logs keep
anything that still opens the claim.

"Once per device": redeeming a link marks it used in the same statement that checks it
was unused, so two devices racing for one link get one session between them. The device
that redeemed it keeps its cookie, and opening the link again there just opens the claim.
CSRF: every form and upload carries an HMAC of the session id; the start form, which has
no session yet, uses a double-submit cookie, as the workspace's sign-in form does.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, update

from mobile_api.claims.review import Actor, audit
from mobile_api.errors import ApiError, NotFound
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction

SESSION_COOKIE = "cdat_capture_session"
START_CSRF_COOKIE = "cdat_capture_csrf"
COOKIE_PATH = "/capture"
LINK_HOURS, LINK_MAX_HOURS = 72, 14 * 24


class NotSignedIn(ApiError):
    status = 401
    code = "not_signed_in"


class LinkRefused(ApiError):
    status = 403
    code = "link_refused"


@dataclass(frozen=True)
class Claimant:
    claim_id: str
    session_id: str


@dataclass(frozen=True)
class IssuedLink:
    url: str
    """Shown once: only its digest is stored."""
    expires_at: datetime


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def cookie_args() -> dict[str, object]:
    return {"httponly": True, "secure": True, "samesite": "strict", "path": COOKIE_PATH}


def session_seconds(rt: Runtime) -> int:
    """How long a capture session (and its cookie) lasts: `capture_session_hours`."""
    return rt.settings.capture_session_hours * 3600


def open_session(rt: Runtime, claim_id: str) -> str:
    """A new session for `claim_id`; returns the cookie's value (shown once)."""
    token = secrets.token_urlsafe(32)
    with transaction(rt.sessions) as session:
        session.add(
            models.CaptureSession(
                id=_digest(token),
                claim_id=claim_id,
                expires_at=_now() + timedelta(seconds=session_seconds(rt)),
            )
        )
    return token


def close_session(rt: Runtime, session_id: str) -> None:
    """Sign out: the stored session goes, so the cookie opens nothing even if a copy of it
    survives (a shared phone, a browser that keeps cookies)."""
    with transaction(rt.sessions) as session:
        session.execute(delete(models.CaptureSession).where(models.CaptureSession.id == session_id))


def claimant(rt: Runtime, token: str | None) -> Claimant:
    """The claim a session cookie opens; NotSignedIn when it opens none."""
    if not token or len(token) > 128:
        raise NotSignedIn("open your claim from the link you were sent, or start a new claim")
    with rt.sessions() as session:
        stored = session.get(models.CaptureSession, _digest(token))
        if stored is None or stored.expires_at < _now():
            raise NotSignedIn("your session ended: open your claim from the link again")
        return Claimant(stored.claim_id, stored.id)


def csrf_token(secret_key: str, session_id: str) -> str:
    message = f"capture-csrf|{session_id}".encode()
    return hmac.new(secret_key.encode(), message, "sha256").hexdigest()


def create_link(rt: Runtime, claim_id: str, created_by: str, hours: int) -> tuple[str, datetime]:
    """A one-time link secret for the claim and when it expires. The claim must exist.

    Audited as `capture_link.created`, with the expiry and the first characters of the
    stored digest (never the secret), so the claim's history says who let whom in, and until
    when.
    """
    secret = secrets.token_urlsafe(32)
    expires = _now() + timedelta(hours=hours)
    digest = _digest(secret)
    with transaction(rt.sessions) as session:
        if session.get(models.Claim, claim_id) is None:
            raise NotFound(f"no claim {claim_id}")
        session.add(
            models.CaptureLink(
                id=digest, claim_id=claim_id, expires_at=expires, created_by=created_by
            )
        )
        after = {"link": digest[:12], "expires_at": expires.isoformat()}
        audit(session, claim_id, Actor("", created_by), "capture_link.created", None, after)
    return secret, expires


def issue_link(
    rt: Runtime, base_url: str, claim_id: str, created_by: str, hours: int
) -> IssuedLink:
    """`create_link` as the URL to send: the staff API and the workspace both give this."""
    secret, expires = create_link(rt, claim_id, created_by, hours)
    # In the fragment: browsers never send it, so no server or proxy log holds the secret.
    return IssuedLink(base_url.rstrip("/") + f"{COOKIE_PATH}/link#{secret}", expires)


def link_owner(rt: Runtime, secret: str) -> str | None:
    """The claim a link was made for, used or not (its own device may open it again)."""
    if len(secret) >= 128:
        return None
    with rt.sessions() as session:
        link = session.get(models.CaptureLink, _digest(secret))
        return link.claim_id if link is not None else None


def link_claim(rt: Runtime, secret: str) -> str:
    """The claim an unused, unexpired link opens; LinkRefused otherwise (one message for
    every case, so a guess learns nothing)."""
    with rt.sessions() as session:
        link = session.get(models.CaptureLink, _digest(secret)) if len(secret) < 128 else None
        if link is None or link.used_at is not None or link.expires_at < _now():
            raise LinkRefused("this link has expired or was already used on another device")
        return link.claim_id


def redeem_link(rt: Runtime, secret: str) -> tuple[str, str]:
    """Use the link up and open a session on its claim: (claim id, session cookie value)."""
    claim_id = link_claim(rt, secret)
    token = secrets.token_urlsafe(32)
    now = _now()
    with transaction(rt.sessions) as session:
        used = session.execute(
            update(models.CaptureLink)
            .where(
                models.CaptureLink.id == _digest(secret),
                models.CaptureLink.used_at.is_(None),
                models.CaptureLink.expires_at >= now,
            )
            .values(used_at=now)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise LinkRefused("this link has expired or was already used on another device")
        session.add(
            models.CaptureSession(
                id=_digest(token),
                claim_id=claim_id,
                expires_at=now + timedelta(seconds=session_seconds(rt)),
            )
        )
    return claim_id, token
