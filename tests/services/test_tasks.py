"""The server's thread pool for blocking database calls."""

from __future__ import annotations

import asyncio
import os
import threading

from escalation_app.services import tasks


async def _simultaneous_blocking_calls(count: int, timeout: float) -> bool:
    """True when `count` blocking calls can all be inside a thread at the same moment."""
    barrier = threading.Barrier(count, timeout=timeout)

    def wait_for_all() -> None:
        barrier.wait()

    try:
        await asyncio.gather(*(asyncio.to_thread(wait_for_all) for _ in range(count)))
    except threading.BrokenBarrierError:
        return False
    return True


async def test_widened_pool_runs_as_many_blocking_calls_at_once_as_the_database_pool_has_connections():
    count = tasks.DATABASE_THREADS
    # Positive control: asyncio's default pool (cpu_count + 4 threads, at most 32) cannot.
    if count > min(32, (os.cpu_count() or 1) + 4):
        assert not await _simultaneous_blocking_calls(count, timeout=0.5)
    await tasks.widen_thread_pool()
    assert await _simultaneous_blocking_calls(count, timeout=10)
