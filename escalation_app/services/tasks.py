"""App-owned background tasks: fire-and-forget work that must never be lost silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger(__name__)

# Strong references, so the event loop does not garbage-collect running tasks.
_RUNNING: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task:
    """Run `coro` in the background; log (never raise) if it fails."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _RUNNING.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _RUNNING.discard(task)
    if task.cancelled():
        logger.warning("background task %s was cancelled", task.get_name())
    elif (error := task.exception()) is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=error)


async def drain(timeout: float = 5.0) -> None:
    """Wait for the running background tasks (tests and shutdown)."""
    pending = [t for t in _RUNNING if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout)
