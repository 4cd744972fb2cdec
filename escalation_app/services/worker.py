"""The outbox worker: one loop per backend process runs due jobs through their handlers.

Handlers live one module per side effect and are registered by kind in `HANDLERS`.
A handler returns a short result (success), raises `outbox.JobSkipped` (nothing to
do), `outbox.JobRefused` (failed, retrying cannot help), `outbox.JobWaits` (not yet),
or any other exception (failed; retried on the kind's backoff until its attempts are
used up). The worker records each outcome; it never raises into the click path.

How jobs start:
- The committing process is told after its commit (`outbox.set_commit_listener`) and
  wakes its loop at once. Live pushes it runs straight away, without taking a lease
  (a push is idempotent: it sends the current truth), and then marks them done;
  their `run_at` lies a little ahead so another worker runs one only if this process
  died first.
- Other workers wake on PostgreSQL's NOTIFY (sent by the committing transaction).
- Polling every `poll_interval` seconds is the fallback, and also serves timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import Engine
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from escalation_app.domain import outbox
from escalation_app.domain.db import get_engine, session_scope
from escalation_app.domain.outbox import JobKind, JobView
from escalation_app.domain.types import utcnow
from escalation_app.services import ai_review, assessment, clock, notifications, psa, realtime
from escalation_app.services.threads import in_job_thread
from escalation_app.settings import get_settings

logger = logging.getLogger(__name__)

Handler = Callable[[JobView, Engine | None], Awaitable[str | None]]

HANDLERS: dict[str, Handler] = {
    JobKind.LIVE: realtime.run_live_job,
    JobKind.EMAIL: notifications.run_email_job,
    JobKind.WEBHOOK: notifications.run_webhook_job,
    JobKind.PSA_NOTE: psa.run_psa_job,
    JobKind.ASSESSMENT: assessment.run_assessment_job,
    JobKind.GRADING: ai_review.run_grading_job,
    JobKind.TIMER: clock.run_timer_job,
}

POLL_SECONDS = 5.0
# The committing process's live pushes go first: other jobs wait for them (at most this
# long), so their database reads and threads do not slow the cards down.
LIVE_FIRST_SECONDS = 1.0
CONCURRENCY = 16
# How long to keep trying to record an outcome while the database is away: an email
# that was sent must not be sent again because its "sent" could not be written.
RECORD_RETRY_SECONDS = 45.0


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Takes due jobs with a lease and runs them, at most `concurrency` at a time."""

    def __init__(
        self,
        *,
        engine: Engine | None = None,
        handlers: dict[str, Handler] | None = None,
        name: str | None = None,
        poll_interval: float = POLL_SECONDS,
        concurrency: int = CONCURRENCY,
        clock: Callable[[], datetime] = utcnow,
        record_retry_seconds: float = RECORD_RETRY_SECONDS,
        kinds: list[str] | None = None,
    ):
        self.engine = engine
        self.handlers = dict(HANDLERS if handlers is None else handlers)
        self.name = name or worker_name()
        self.poll_interval = poll_interval
        self.clock = clock
        self.record_retry_seconds = record_retry_seconds
        # Only these kinds are taken (None: all); tests run one side effect at a time.
        self.kinds = kinds
        self._concurrency = concurrency
        self._busy = 0
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._live: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ waking

    def attach(self) -> None:
        """Hear about this process's commits (call from the worker's event loop)."""
        self._loop = asyncio.get_running_loop()
        outbox.set_commit_listener(self._committed)

    def detach(self) -> None:
        outbox.set_commit_listener(None)

    def _committed(self, jobs: list[JobView]) -> None:
        """Called in the committing thread right after a commit that added jobs."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        live = [job for job in jobs if job.kind == JobKind.LIVE]
        loop.call_soon_threadsafe(self._on_commit, live)

    def _on_commit(self, live: list[JobView]) -> None:
        for job in live:
            task = self._spawn(self._run_unleased(job), f"live-{job.id}")
            self._live.add(task)
            task.add_done_callback(self._live.discard)
        if not live:
            self.wake()
            return
        # The rest of the change's jobs are due a moment later (domain.effects.AFTER_LIVE):
        # look for them once the pushes are out.
        self._spawn(self._wake_after_live(), "wake-after-live")

    async def _wake_after_live(self) -> None:
        await asyncio.wait(set(self._live), timeout=LIVE_FIRST_SECONDS)
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def _spawn(self, coro: Awaitable, name: str) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("outbox task %s failed", task.get_name(), exc_info=error)

    # ------------------------------------------------------------------ running

    async def _db(self, work: Callable, *args, **kwargs):
        def run():
            with session_scope(self.engine) as db:
                return work(db, *args, **kwargs)

        return await in_job_thread(run)

    async def _run_unleased(self, job: JobView) -> None:
        """A live push of this process's own commit: now, then marked done."""
        handler = self.handlers.get(job.kind)
        if handler is None:
            return
        try:
            await handler(job, self.engine)
        except Exception:
            # The job stays pending: a worker takes it at its run_at and pushes again.
            logger.exception("live push of job %s failed; it will be retried", job.id)
            return
        try:
            await self._db(outbox.complete_unleased, job.id, now=self.clock())
        except Exception:
            logger.warning("could not mark live job %s done; it may be pushed again", job.id)

    async def _record(self, what: Callable, job: JobView, *args, **kwargs) -> None:
        """Write an outcome, retrying while the database is away (within the job's lease)."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.record_retry_seconds),
                wait=wait_exponential(multiplier=0.2, max=5),
                retry=retry_if_exception_type(Exception),
                reraise=True,
            ):
                with attempt:
                    if not await self._db(what, job, *args, now=self.clock(), **kwargs):
                        logger.warning("job %s: outcome not recorded, another attempt owns it", job.id)
        except Exception:
            logger.exception("job %s: could not record its outcome; its lease will expire", job.id)

    async def run_job(self, job: JobView) -> None:
        """Run one taken job through its handler and record what happened."""
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self._record(outbox.fail, job, f"No handler for {job.kind} jobs", retry=False)
            return
        try:
            result = await handler(job, self.engine)
        except outbox.JobSkipped as skipped:
            await self._record(outbox.skip, job, str(skipped) or "Skipped")
        except outbox.JobWaits as waits:
            await self._record(outbox.defer, job, waits.until)
        except outbox.JobRefused as refused:
            logger.warning("%s job %s refused: %s", job.kind, job.id, refused)
            await self._record(outbox.fail, job, str(refused), retry=False)
        except asyncio.CancelledError:
            # Shutting down: the lease runs out and another worker takes it.
            raise
        except Exception as error:
            reason = str(error) or type(error).__name__
            log = logger.warning if job.attempts < job.max_attempts else logger.error
            log("%s job %s attempt %d failed: %s", job.kind, job.id, job.attempts, reason)
            await self._record(outbox.fail, job, reason)
        else:
            await self._record(outbox.complete, job, result=result)

    async def _run_in_slot(self, job: JobView) -> None:
        try:
            await self.run_job(job)
        finally:
            self._busy -= 1
            self.wake()  # a slot is free: take what waits

    async def run_due_once(self) -> int:
        """Take what is due now (as many as there are free slots) and start it; how many."""
        if self._live:
            await asyncio.wait(set(self._live), timeout=LIVE_FIRST_SECONDS)
        free = self._free_slots()
        if not free:
            return 0
        jobs = await self._db(
            outbox.take_due, worker_id=self.name, now=self.clock(), limit=free, kinds=self.kinds
        )
        for job in jobs:
            self._busy += 1
            self._spawn(self._run_in_slot(job), f"job-{job.kind}-{job.id}")
        return len(jobs)

    def _free_slots(self) -> int:
        return self._concurrency - self._busy

    async def drain(self, timeout: float = 30.0) -> int:
        """Run due jobs until none is due and none is running (tests, shutdown); how many ran."""
        total = 0
        async with asyncio.timeout(timeout):
            while True:
                total += await self.run_due_once()
                if self._running:
                    await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
                    continue
                more = await self.run_due_once()
                if not more:
                    return total
                total += more

    async def _sleep(self) -> None:
        """Until woken, the next timer, or the poll interval, whichever comes first."""
        timeout = self.poll_interval
        upcoming = None
        if self._free_slots():  # when all slots are busy, a finishing job wakes the loop
            with contextlib.suppress(Exception):
                upcoming = await self._db(outbox.next_run_at)
        if upcoming is not None:
            timeout = max(0.0, min(timeout, (upcoming - self.clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def run_forever(self) -> None:
        """The loop (a Reflex lifespan task): take, run, sleep; database faults back off."""
        self.attach()
        failures = 0
        try:
            while True:
                try:
                    taken = await self.run_due_once()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    failures += 1
                    logger.warning("outbox: could not take jobs (%s); retrying", type(error).__name__)
                    await asyncio.sleep(min(self.poll_interval, 0.25 * 2**failures))
                    continue
                if taken and self._free_slots():
                    continue  # there may be more due
                await self._sleep()
        finally:
            self.detach()


_worker: Worker | None = None


def current() -> Worker | None:
    """This process's worker, once started."""
    return _worker


async def run_worker() -> None:
    """Reflex lifespan task: this process's outbox loop, plus PostgreSQL NOTIFY wake-ups."""
    global _worker
    _worker = Worker()
    listener = asyncio.create_task(_listen_for_notify(_worker), name="outbox-listen")
    try:
        await _worker.run_forever()
    finally:
        listener.cancel()


async def _listen_for_notify(worker: Worker) -> None:
    """Wake `worker` when any process commits jobs (PostgreSQL LISTEN; nothing on SQLite)."""
    if get_engine().dialect.name != "postgresql":
        return
    import psycopg

    url = get_settings().database_url.replace("postgresql+psycopg://", "postgresql://")
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
                async for _notice in conn.notifies():
                    worker.wake()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("outbox: lost the NOTIFY connection (%s); polling meanwhile", type(error).__name__)
            await asyncio.sleep(2)


if __name__ == "__main__":
    # `python -m escalation_app.services.worker`: an outbox worker without a web server,
    # for running side effects on their own process (same DATABASE_URL and settings).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker())
