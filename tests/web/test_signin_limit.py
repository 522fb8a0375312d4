"""Failed sign-ins are limited per client address and per account; successes never count."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from mobile_api.web.session import SESSION_COOKIE
from tests import services
from tests.conftest import make_settings, serving
from tests.web.conftest import EMAIL, PASSWORD, sign_in

HTTPS = {"base_url": "https://testserver"}


def _adjuster(client: TestClient) -> None:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    create_staff(rt, EMAIL, Role.ADJUSTER, password_hash=hash_password(PASSWORD))


def test_password_spraying_across_accounts_is_limited_per_address(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signin_failures_per_address=5)
    with serving(settings, **HTTPS) as web:
        # given one address trying one password on many accounts
        answers = [sign_in(web, f"user{i}@insurer.example", "Winter2026!") for i in range(7)]
    # then after five failures it is slowed down, whatever the account
    assert [a.status_code for a in answers] == [401] * 5 + [429] * 2
    assert "too many failed sign-ins from this address" in answers[-1].text
    assert SESSION_COOKIE not in answers[-1].headers.get("set-cookie", "")


def test_guessing_one_account_is_limited_across_addresses(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signin_failures_per_account=3)
    with serving(settings, **HTTPS) as web:
        _adjuster(web)
        # given wrong passwords for one account from three addresses
        for octet in (1, 2, 3):
            with TestClient(web.app, client=(f"198.51.100.{octet}", 4000), **HTTPS) as other:
                assert sign_in(other, EMAIL, "wrong-password").status_code == 401
        # when a fourth address tries
        with TestClient(web.app, client=("198.51.100.4", 4000), **HTTPS) as fourth:
            blocked = sign_in(fourth, EMAIL, "wrong-password")
    # then the account is protected
    assert blocked.status_code == 429
    assert "too many failed sign-ins for this account" in blocked.text


def test_successful_sign_ins_never_count(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, signin_failures_per_address=3, signin_failures_per_account=3)
    with serving(settings, **HTTPS) as web:
        _adjuster(web)
        # when the adjuster signs in many times from one address
        answers = [sign_in(web).status_code for _ in range(12)]
    # then every sign-in goes through
    assert answers == [303] * 12


@pytest.mark.services
def test_replicas_share_one_budget_through_redis(tmp_path: Path) -> None:
    # given two API replicas counting in the same Redis
    url = services.fresh_redis().rsplit("/", 1)[0] + "/9"
    redis.Redis.from_url(url).flushdb()
    settings = make_settings(tmp_path, rate_limit_url=url, signin_failures_per_address=4)
    with serving(settings, **HTTPS) as first, serving(settings, **HTTPS) as second:
        # when one address fails twice on each
        answers = [sign_in(replica, EMAIL, "wrong").status_code for replica in (first, second) * 2]
        # then the fifth failure, on either replica, is refused: the fleet has one budget
        assert answers == [401] * 4
        assert sign_in(first, EMAIL, "wrong").status_code == 429
        assert sign_in(second, EMAIL, "wrong").status_code == 429
