"""A bounded pool for checking uploaded photos: a few at a time, a short queue, then 503.

Checking a photo parses its header and proves its pixel data whole at a bounded cost
(`claims.images`); this pool bounds how many such checks one API process runs at once, so
a burst of large uploads cannot take every core or pile up memory. A request that finds the
pool and its queue full is answered 503 with `Retry-After` at once, before any work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mobile_api.errors import ServiceUnavailable

T = TypeVar("T")


class PhotoChecks:
    def __init__(self, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="photo-check")
        self._slots = threading.BoundedSemaphore(workers + queue)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._slots.acquire(blocking=False):
            raise ServiceUnavailable(
                "the server is checking as many photos as it can; nothing was stored, "
                "send them again in a few seconds",
                field="files",
            )
        try:
            future = self._executor.submit(fn, *args, **kwargs)
            return await asyncio.wrap_future(future)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
