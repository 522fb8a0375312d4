"""Rate limits on the `limits` library: moving windows, counted where the settings say.

With Redis configured (`CDAT_RATE_LIMIT_URL`, or a Redis broker), every API replica counts
in the same Redis, so a fleet allows the configured budget, not one budget per replica.
On the embedded default the counters live in each API process's memory.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from cdat.errors import ConfigurationError
from cdat.settings import Settings
from mobile_api.errors import RateLimited, ServiceUnavailable

log = logging.getLogger("cdat.signin")


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


class AttemptCounter:
    """Attempts per key in fixed windows, counted atomically before the work they guard:
    in Redis (INCR, and the window's expiry set by the first attempt) when configured, so
    every replica shares the count; else in this process, under a lock."""

    def __init__(self, url: str) -> None:
        self._redis: redis.Redis | None = None
        if url.startswith(("redis://", "rediss://", "unix://")):
            self._redis = redis.Redis.from_url(url)
        self._lock = threading.Lock()
        self._memory: dict[str, tuple[int, float]] = {}

    def take(self, key: str, window_s: int) -> tuple[int, int]:
        """Count one attempt; returns the count in this window and the seconds it has left."""
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, window_s, nx=True)
            pipe.ttl(key)
            count, _, ttl = pipe.execute()
            return int(count), max(1, int(ttl))
        now = time.monotonic()
        with self._lock:
            count, ends = self._memory.get(key, (0, now + window_s))
            if ends <= now:
                count, ends = 0, now + window_s
            self._memory[key] = (count + 1, ends)
            if len(self._memory) > 100_000:  # forget finished windows
                self._memory = {k: v for k, v in self._memory.items() if v[1] > now}
        return count + 1, max(1, int(ends - now + 0.999))

    def give_back(self, key: str) -> None:
        """Undo one attempt (it succeeded), if its window is still open."""
        if self._redis is not None:
            self._redis.eval(_GIVE_BACK, 1, key)
            return
        with self._lock:
            count, ends = self._memory.get(key, (0, 0.0))
            if count > 0:
                self._memory[key] = (count - 1, ends)


_GIVE_BACK = "if redis.call('exists', KEYS[1]) == 1 then return redis.call('decr', KEYS[1]) end"


class SignInThrottle:
    """Sign-in attempts per client address (password spraying) and per account (guessing).

    Each attempt is counted before the password hash is checked, atomically, so concurrent
    attempts cannot all pass one check; a successful sign-in gives its count back, so only
    failures use the budget. The address is limited first. An account's own budget is
    larger and its window short, so whoever guesses at an account from many addresses
    cannot lock its owner out for long. Every lockout is logged.
    """

    def __init__(self, counter: AttemptCounter, settings: Settings) -> None:
        self.counter = counter
        self.per_address = (settings.signin_failures_per_address, settings.signin_window_seconds)
        self.per_account = (
            settings.signin_failures_per_account,
            settings.signin_account_window_seconds,
        )

    def attempt(self, address: str, email: str) -> None:
        """Count a sign-in attempt; RateLimited when the address or account is over its limit."""
        self._take(_address_key(address), self.per_address, "from this address", address)
        self._take(_account_key(email), self.per_account, "for this account", _account(email))

    def succeeded(self, address: str, email: str) -> None:
        self._guarded(self.counter.give_back, _address_key(address))
        self._guarded(self.counter.give_back, _account_key(email))

    def _take(self, key: str, budget: tuple[int, int], what: str, shown: str) -> None:
        limit, window = budget
        count, left = self._guarded(self.counter.take, key, window)
        if count <= limit:
            return
        if count == limit + 1:
            log.warning(
                "sign-in lockout %s %r: %d failed sign-ins within %d s; refused for %d s",
                what,
                shown,
                limit,
                window,
                left,
            )
        raise RateLimited(
            f"too many failed sign-ins {what}; try again in {left} s", retry_after=left
        )

    @staticmethod
    def _guarded(call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(
                f"the rate-limit store is unreachable ({type(exc).__name__}); retry shortly"
            ) from exc


def _account(email: str) -> str:
    return email.strip().lower()


def _address_key(address: str) -> str:
    return f"cdat:signin:address:{address}"


def _account_key(email: str) -> str:
    # Hashed: the counter store need not hold staff e-mail addresses.
    return "cdat:signin:account:" + hashlib.sha256(_account(email).encode()).hexdigest()[:32]


class Limits:
    """Every limit of one API process, sharing one counter store."""

    def __init__(self, settings: Settings) -> None:
        storage = storage_from_string(settings.resolved_rate_limit_url)
        if not isinstance(storage, Storage):  # an async scheme (`async+redis://`) cannot serve here
            raise ConfigurationError("CDAT_RATE_LIMIT_URL must name a synchronous storage")
        self.uploads = RateLimiter(storage, "uploads", settings.upload_requests_per_minute, 60)
        self.claims = RateLimiter(storage, "claims", settings.claims_per_hour_per_address, 3600)
        self.signin = SignInThrottle(AttemptCounter(settings.resolved_rate_limit_url), settings)
