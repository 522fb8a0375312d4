"""Long-polling: an answer held until something changes, for the API and the capture page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool

POLL_SECONDS = 0.25
"""How often the condition is read again: a database read, off the event loop."""


async def wait_until(condition: Callable[[], bool], seconds: float) -> None:
    """Until `condition()` holds or `seconds` pass, whichever comes first."""
    deadline = time.monotonic() + seconds
    while not await run_in_threadpool(condition):
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(POLL_SECONDS)
