"""A sliding-window rate limiter, per API process.

Enough to stop one phone or one script from hammering uploads or sign-in; a
fleet behind a load balancer divides the budget by its replica count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from mobile_api.errors import RateLimited


class RateLimiter:
    def __init__(
        self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, what: str) -> None:
        """Count one request for `key`; raise RateLimited when over the limit."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = int(hits[0] + self.window_s - now) + 1
                raise RateLimited(f"too many {what}; try again in {retry} s")
            hits.append(now)
            if len(self._hits) > 100_000:
                self._forget_idle(now)

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window_s]
        for key in idle:
            del self._hits[key]
