"""Continuous synthesis: take queries from the queue, run THE pipeline, store the pairs, ack.

Failure handling, by kind:
- a backend that is UNAVAILABLE (restarting, scaled to zero) or Redis being down is the system's
  fault, not the query's: the worker waits with backoff and tries again, without counting an attempt;
- any other error counts: the query is re-queued with its error, and after max_attempts it goes to
  the dead-letter stream;
- a worker that dies leaves its entries pending; after claim_idle_ms another worker takes them over,
  and each such takeover counts as an attempt, so a query that kills workers ends up dead-lettered.
Pairs are written (stream or spool) before the ack, and pair ids make a repeat harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from services.core import request_id
from services.core.consumers import backoff_s, sleep_unless_stopped
from services.pipeline.clients import BackendError
from services.pipeline.models import SynthesisResult
from services.pipeline.synthesize import SynthesisRequest
from services.store.writer import PairWriter
from services.worker.config import QueueSettings
from services.worker.queue import Job, QueryQueue, completion_record

log = logging.getLogger(__name__)
T = TypeVar("T")

JOBS = Counter(
    "tailsynth_worker_jobs_total",
    "Queue entries handled, by outcome: done, retried, dead, released (handed back at shutdown), error.",
    ["outcome"],
)
JOB_SECONDS = Histogram(
    "tailsynth_worker_job_duration_seconds",
    "Time from taking a query to acking it.",
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
WAITS = Counter(
    "tailsynth_worker_waits_total",
    "Backoff waits because a dependency was down, by dependency: backend or redis.",
    ["dependency"],
)


class Synthesizer(Protocol):
    async def run(self, request: SynthesisRequest) -> SynthesisResult: ...


class Stopped(Exception):
    """The worker is stopping while waiting for a dependency; the entry is handed back."""


class QueueWorker:
    def __init__(
        self, queue: QueryQueue, pipeline: Synthesizer, writer: PairWriter, settings: QueueSettings
    ) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.writer = writer
        self.settings = settings
        self.consumer = settings.consumer
        self.working: set[str] = set()  # entry ids in progress, heartbeated together

    async def run(self, stop: asyncio.Event) -> None:
        await self._until_redis(self.queue.ensure_group, stop)
        with contextlib.suppress(RedisError):
            await self.queue.prune_consumers(idle_ms=3_600_000)
        heartbeat = asyncio.create_task(self._heartbeat())
        tasks: set[asyncio.Task[None]] = set()
        failures = 0
        try:
            while not stop.is_set():
                free = self.settings.concurrency - len(tasks)
                if free <= 0:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    jobs = await self.queue.claim_stale(self.consumer, free)
                    if not jobs:
                        jobs = await self.queue.read_new(self.consumer, free, self.settings.block_ms)
                    failures = 0
                except RedisError as error:
                    failures += 1
                    WAITS.labels("redis").inc()
                    log.warning("queue read failed (%s); retrying", error)
                    await sleep_unless_stopped(stop, backoff_s(failures))
                    continue
                for job in jobs:
                    if job.entry_id in self.working:
                        continue  # ours and in progress: its heartbeat was late, nobody died
                    self.working.add(job.entry_id)
                    task = asyncio.create_task(self.process(job, stop))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await self._drain(tasks)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Let in-flight queries finish within the grace period; hand the rest back."""
        if tasks:
            log.info("draining %d in-flight queries (up to %.0fs)", len(tasks), self.settings.grace_s)
            _, late = await asyncio.wait(tasks, timeout=self.settings.grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self.working:
            with contextlib.suppress(RedisError):
                await self.queue.release(self.consumer, sorted(self.working))
            JOBS.labels("released").inc(len(self.working))
            log.info("handed %d unfinished queries back to the queue", len(self.working))

    async def process(self, job: Job, stop: asyncio.Event) -> None:
        # The job id ties the worker's and the services' log lines for this query together.
        token = request_id.bind(request_id.accept(f"job-{job.job_id}"))
        try:
            await self._handle(job, stop)
        finally:
            request_id.reset(token)

    async def _handle(self, job: Job, stop: asyncio.Event) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._process(job, stop)
        except Stopped:
            return  # stays in self.working: released by _drain
        except Exception:
            # Unexpected (e.g. the spool's disk is full): stop heartbeating the entry, so it is taken
            # over after claim_idle_ms and counted as an attempt, exactly as if this worker had died.
            log.exception("query %r: unexpected failure", job.fields.get("query", ""))
            self.working.discard(job.entry_id)
            JOBS.labels("error").inc()
            return
        self.working.discard(job.entry_id)
        JOBS.labels(outcome).inc()
        JOB_SECONDS.observe(time.perf_counter() - started)

    async def _process(self, job: Job, stop: asyncio.Event) -> str:
        if job.item is None:
            return await self._fail(job, job.problem, stop, retryable=False)
        if job.attempts >= self.settings.max_attempts:
            crashed = job.deliveries - 1
            last = job.fields.get("last_error") or "none"
            error = f"taken over {crashed} times from workers that died or hung; last error: {last}"
            return await self._fail(job, error, stop, retryable=False)
        request = SynthesisRequest(job.item.query, job.item.num_rewrites, job.item.top_k, job.item.origin)
        try:
            result = await self._until_backends(lambda: self.pipeline.run(request), stop)
        except Stopped:
            raise
        except Exception as error:  # the query's own failure: counted
            log.warning("query %r failed (attempt %d): %s", job.item.query, job.attempts + 1, error)
            return await self._fail(job, f"{type(error).__name__}: {error}", stop, retryable=True)
        written = await self.writer.write(result)
        pair_ids = [p.pair_id for p in result.pairs if p.accepted]
        record = completion_record(
            result.query, pair_ids, written.appended, written.spooled, result.pipeline_version, self.consumer
        )
        await self._until_redis(lambda: self.queue.complete(job, record), stop)
        return "done"

    async def _fail(self, job: Job, error: str, stop: asyncio.Event, *, retryable: bool) -> str:
        if retryable and job.attempts + 1 < self.settings.max_attempts:
            await self._until_redis(lambda: self.queue.retry(job, error), stop)
            return "retried"
        await self._until_redis(lambda: self.queue.dead_letter(job, error, self.consumer), stop)
        log.error("query %r dead-lettered: %s", job.fields.get("query", ""), error)
        return "dead"

    async def _until_backends(self, call: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T:
        waits = 0
        while True:
            try:
                return await call()
            except BackendError as error:
                if error.code != grpc.StatusCode.UNAVAILABLE:
                    raise
                waits += 1
                WAITS.labels("backend").inc()
                log.warning("%s unavailable; waiting (%s)", error.service, error.detail)
            if stop.is_set() or not await sleep_unless_stopped(stop, backoff_s(waits)):
                raise Stopped

    async def _until_redis(self, call: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T:
        waits = 0
        while True:
            try:
                return await call()
            except RedisError as error:
                waits += 1
                WAITS.labels("redis").inc()
                log.warning("redis unavailable (%s); waiting", error)
            if not await sleep_unless_stopped(stop, backoff_s(waits)):
                raise Stopped

    async def _heartbeat(self) -> None:
        """Keep this worker's entries fresh so no other worker takes them over while it lives."""
        interval = self.settings.claim_idle_ms / 3000
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(RedisError):
                await self.queue.heartbeat(self.consumer, sorted(self.working))
