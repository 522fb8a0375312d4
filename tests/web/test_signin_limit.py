"""Failed sign-ins are limited per client address and per account; successes never count."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobile_api.auth import Role, hash_password
from mobile_api.claims.service import create_staff
from mobile_api.runtime import Runtime
from mobile_api.web.session import LOGIN_CSRF_COOKIE, SESSION_COOKIE
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
    # and told when to try again, as the API tells a client it has limited
    assert int(answers[-1].headers["retry-after"]) > 0
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
    url = services.fresh_redis(slot=1)
    settings = make_settings(tmp_path, rate_limit_url=url, signin_failures_per_address=4)
    with serving(settings, **HTTPS) as first, serving(settings, **HTTPS) as second:
        # when one address fails twice on each
        answers = [sign_in(replica, EMAIL, "wrong").status_code for replica in (first, second) * 2]
        # then the fifth failure, on either replica, is refused: the fleet has one budget
        assert answers == [401] * 4
        assert sign_in(first, EMAIL, "wrong").status_code == 429
        assert sign_in(second, EMAIL, "wrong").status_code == 429


COUNTERS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.services),
]


def _counter_url(kind: str) -> str | None:
    if kind == "memory":
        return None
    return services.fresh_redis(slot=2)


def _wrong_at_once(web: TestClient, emails: list[str]) -> list[int]:
    """One wrong password per e-mail, all in flight together, from the client's address."""
    form = web.get("/adjuster/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None

    # Each attempt carries the form's cookie itself: every refusal sets a fresh one in the
    # shared jar, which would race with the threads still to send.
    cookie = {"Cookie": f"{LOGIN_CSRF_COOKIE}={token.group(1)}"}

    def attempt(email: str) -> int:
        data = {"email": email, "password": "wrong-password", "csrf_token": token.group(1)}
        answer = web.post("/adjuster/login", data=data, headers=cookie, follow_redirects=False)
        return answer.status_code

    with ThreadPoolExecutor(max_workers=len(emails)) as pool:
        return sorted(pool.map(attempt, emails))


@pytest.mark.parametrize("counter", COUNTERS)
def test_concurrent_guesses_at_one_account_get_exactly_its_budget(
    tmp_path: Path, counter: str
) -> None:
    url = _counter_url(counter)
    extra = {"rate_limit_url": url} if url else {}
    settings = make_settings(
        tmp_path, signin_failures_per_address=1000, signin_failures_per_account=10, **extra
    )
    address = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    with serving(settings, **HTTPS) as web:
        _adjuster(web)
        with TestClient(web.app, client=(address, 4000), **HTTPS) as client:
            # when 60 wrong passwords for one account arrive at once
            answers = _wrong_at_once(client, [EMAIL] * 60)
    # then exactly the account's budget had its password checked; the rest were refused
    assert answers.count(401) == 10
    assert answers.count(429) == 50


@pytest.mark.parametrize("counter", COUNTERS)
def test_concurrent_spraying_from_one_address_gets_exactly_its_budget(
    tmp_path: Path, counter: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = _counter_url(counter)
    extra = {"rate_limit_url": url} if url else {}
    settings = make_settings(tmp_path, signin_failures_per_address=20, **extra)
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"
    with (
        serving(settings, **HTTPS) as web,
        TestClient(web.app, client=(address, 4000), **HTTPS) as client,
    ):
        # when one address sprays 60 accounts at once
        answers = _wrong_at_once(client, [f"u{i}@insurer.example" for i in range(60)])
    # then 20 were checked, 40 refused, and the lockout was logged once, naming the address
    assert answers.count(401) == 20
    assert answers.count(429) == 40
    lockouts = [r for r in caplog.records if "sign-in lockout" in r.getMessage()]
    assert len(lockouts) == 1 and address in lockouts[0].getMessage()


def test_the_owner_is_locked_out_only_for_the_short_account_window(tmp_path: Path) -> None:
    # A window of four seconds: five sign-ins, each hashing a password, must fit in it on a
    # loaded 2-core CI machine (one second did not, once).
    settings = make_settings(
        tmp_path, signin_failures_per_account=3, signin_account_window_seconds=4
    )
    with serving(settings, **HTTPS) as web:
        _adjuster(web)
        # given an attacker who used up the account's budget from other addresses
        for octet in (1, 2, 3, 4):
            with TestClient(web.app, client=(f"192.0.2.{octet}", 4000), **HTTPS) as other:
                sign_in(other, EMAIL, "wrong-password")
        with TestClient(web.app, client=("192.0.2.9", 4000), **HTTPS) as owner:
            locked = sign_in(owner)
            # when the account's window has passed
            time.sleep(4.2)
            later = sign_in(owner)
    # then the owner, refused during it, signs in right after
    assert locked.status_code == 429
    assert later.status_code == 303
