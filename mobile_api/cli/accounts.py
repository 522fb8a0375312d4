"""Ending staff access: revoke an API token, deactivate a user (tokens and sessions with it).

cdat adjuster revoke-token            # reads the token from stdin (not the shell history)
cdat adjuster revoke-token --all ada@insurer.example
cdat adjuster deactivate ada@insurer.example
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cdat.settings import Settings
from mobile_api.auth import hash_token
from mobile_api.errors import NotFound
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction
from mobile_api.web.session import end_sessions


def revoke_token(rt: Runtime, token: str) -> str:
    """Revoke one API token; returns the e-mail of its user."""
    with transaction(rt.sessions) as session:
        stored = session.get(models.ApiToken, hash_token(token.strip()))
        if stored is None:
            raise NotFound("no such API token (it may have been typed wrong)")
        stored.revoked = True
        return session.get_one(models.User, stored.user_id).email


def revoke_tokens_of(rt: Runtime, email: str) -> int:
    """Revoke every API token of a user; returns how many were still valid."""
    with transaction(rt.sessions) as session:
        user = _user(session, email)
        return _revoke_all(session, user.id)


def deactivate(rt: Runtime, email: str) -> tuple[int, int]:
    """Deactivate a user: no sign-in, no API access. Returns (tokens revoked, sessions ended)."""
    with transaction(rt.sessions) as session:
        user = _user(session, email)
        user.active = False
        return _revoke_all(session, user.id), end_sessions(session, user.id)


def _user(session: Session, email: str) -> models.User:
    user = session.scalar(select(models.User).where(models.User.email == email.strip()))
    if user is None:
        raise NotFound(f"no user {email}")
    return user


def _revoke_all(session: Session, user_id: str) -> int:
    result = session.execute(
        update(models.ApiToken)
        .where(models.ApiToken.user_id == user_id, ~models.ApiToken.revoked)
        .values(revoked=True)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def add_commands(actions: argparse._SubParsersAction) -> None:
    """`revoke-token` and `deactivate` under `cdat adjuster`."""
    revoke = actions.add_parser("revoke-token", help="revoke an API token at once")
    revoke.add_argument(
        "--all",
        metavar="EMAIL",
        help="revoke every token of this user instead of the one read from stdin",
    )
    revoke.set_defaults(handler=_revoke_command)
    off = actions.add_parser(
        "deactivate", help="deactivate a user: revokes their tokens and ends their sessions"
    )
    off.add_argument("email", help="the user's e-mail")
    off.set_defaults(handler=_deactivate_command)


def _revoke_command(args: argparse.Namespace) -> int:
    rt = Runtime.build(Settings())
    try:
        if args.all:
            print(f"revoked {revoke_tokens_of(rt, args.all)} token(s) of {args.all}")
        else:
            email = revoke_token(rt, sys.stdin.readline())
            print(f"revoked a token of {email}")
    finally:
        rt.dispose()
    return 0


def _deactivate_command(args: argparse.Namespace) -> int:
    rt = Runtime.build(Settings())
    try:
        tokens, sessions = deactivate(rt, args.email)
    finally:
        rt.dispose()
    print(f"deactivated {args.email}: {tokens} token(s) revoked, {sessions} session(s) ended")
    return 0
