"""Rate limits on the `limits` library: moving windows, counted where the settings say.

With Redis configured (`CDAT_RATE_LIMIT_URL`, or a Redis broker), every API replica counts
in the same Redis, so a fleet allows the configured budget, not one budget per replica.
On the embedded default the counters live in each API process's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from cdat.errors import ConfigurationError
from cdat.settings import Settings
from mobile_api.errors import RateLimited, ServiceUnavailable


class RateLimiter:
    """`limit` events per `window_s` seconds for each key, under one name."""

    def __init__(self, storage: Storage, name: str, limit: int, window_s: int) -> None:
        self.name = name
        self.item: RateLimitItem = RateLimitItemPerSecond(limit, window_s, namespace="cdat")
        self._limiter = MovingWindowRateLimiter(storage)

    def hit(self, key: str, what: str) -> None:
        """Count one event for `key`; RateLimited when that goes over the limit."""
        if not self._guarded(self._limiter.hit, key):
            self._refuse(key, what)

    def check(self, key: str, what: str) -> None:
        """RateLimited when `key` has no event left, without counting one."""
        if not self._guarded(self._limiter.test, key):
            self._refuse(key, what)

    def count(self, key: str) -> None:
        """Count one event for `key`, whether or not it is still within the limit."""
        self._guarded(self._limiter.hit, key)

    def _guarded(self, call: Callable[..., bool], key: str) -> bool:
        try:
            return call(self.item, self.name, key)
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(
                f"the rate-limit store is unreachable ({type(exc).__name__}); retry shortly"
            ) from exc

    def _refuse(self, key: str, what: str) -> None:
        reset = self._limiter.get_window_stats(self.item, self.name, key).reset_time
        retry = max(1, int(reset - time.time()) + 1)
        raise RateLimited(f"too many {what}; try again in {retry} s", retry_after=retry)


class SignInThrottle:
    """Failed sign-ins per client address (password spraying) and per account (guessing).

    Only failures count: an adjuster who signs in often is never slowed down.
    """

    def __init__(self, storage: Storage, settings: Settings) -> None:
        window = settings.signin_window_seconds
        self.per_address = RateLimiter(
            storage, "signin-address", settings.signin_failures_per_address, window
        )
        self.per_account = RateLimiter(
            storage, "signin-account", settings.signin_failures_per_account, window
        )

    def check(self, address: str, email: str) -> None:
        self.per_address.check(address, "failed sign-ins from this address")
        self.per_account.check(_account(email), "failed sign-ins for this account")

    def failed(self, address: str, email: str) -> None:
        self.per_address.count(address)
        self.per_account.count(_account(email))


def _account(email: str) -> str:
    return email.strip().lower()


class Limits:
    """Every limit of one API process, sharing one counter store."""

    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(settings.resolved_rate_limit_url)
        if not isinstance(storage, Storage):  # an async scheme (`async+redis://`) cannot serve here
            raise ConfigurationError("CDAT_RATE_LIMIT_URL must name a synchronous storage")
        self.uploads = RateLimiter(storage, "uploads", settings.upload_requests_per_minute, 60)
        self.claims = RateLimiter(storage, "claims", settings.claims_per_hour_per_address, 3600)
        self.signin = SignInThrottle(storage, settings)
