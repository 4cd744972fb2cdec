"""A thread pool of their own for side-effect jobs, so clicks never queue behind them.

Handlers and live pushes run their database work through `asyncio.to_thread`, on the
event loop's default pool (a handful of threads: `min(32, cores + 4)`). The outbox worker
runs up to 16 jobs at once, each with database reads and writes and, for email, a
blocking host-name lookup; on that same pool a burst of jobs (an escalation to a team of
50 is 50 emails) left the escalate click waiting ~150 ms for a thread (make bench part (a)
after part (b): card p50 172 ms against 31 ms on an idle server). Jobs use this pool
instead; the default pool stays free for what a person is waiting on.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

JOB_THREADS = 4
_pool = ThreadPoolExecutor(max_workers=JOB_THREADS, thread_name_prefix="outbox-job")


async def in_job_thread(work: Callable[..., T], /, *args, **kwargs) -> T:
    """`asyncio.to_thread` for side-effect jobs: the same, on the jobs' own pool."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
    return await loop.run_in_executor(_pool, call)
