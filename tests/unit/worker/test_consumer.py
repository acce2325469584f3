"""Queue worker semantics against a real Redis-compatible server.

The pipeline is replaced by a scripted one: these tests are about the queue's wiring (acks, retries,
dead letters, takeovers, shutdown), not about synthesis, which the integration tests run for real.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis

from services.core.redis_server import EmbeddedRedis
from services.pipeline.clients import BackendError
from services.pipeline.ids import pair_id
from services.pipeline.models import QueryItem, SynthesisResult
from services.pipeline.synthesize import SynthesisRequest
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter
from services.worker.config import QueueSettings
from services.worker.consumer import QueueWorker
from services.worker.queue import QueryQueue
from tests.results import pair, result


class ScriptedPipeline:
    """Answers each call with the next scripted step: an exception to raise, or a delay then success."""

    def __init__(self, *steps: BaseException | float) -> None:
        self.steps = list(steps)
        self.calls: list[str] = []

    async def run(self, request: SynthesisRequest) -> SynthesisResult:
        self.calls.append(request.query)
        step = self.steps.pop(0) if self.steps else 0.0
        if isinstance(step, BaseException):
            raise step
        await asyncio.sleep(step)
        return result(request.query, [pair(request.query, f"P-{request.query}", title="t")], timings_ms={})


@pytest.fixture
def settings(redis_server: EmbeddedRedis) -> QueueSettings:
    return QueueSettings(
        stream_key=f"test:{uuid.uuid4().hex}", consumer="w1", claim_idle_ms=1000, block_ms=50,
        max_attempts=3, grace_s=5, redis_url=redis_server.url,
    )  # fmt: skip


def make_worker(redis: Redis, settings: QueueSettings, pipeline: ScriptedPipeline, tmp: Path) -> QueueWorker:
    stream = TrainingStream(redis, f"{settings.stream_key}:pairs", f"{settings.stream_key}:seen")
    return QueueWorker(QueryQueue(redis, settings), pipeline, PairWriter(stream, Spool(tmp)), settings)


async def run_until(worker: QueueWorker, done: Callable[[], Awaitable[bool]], timeout_s: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout_s):
            while not await done():
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task


def records(raw: list[tuple[bytes, dict[bytes, bytes]]]) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in raw]


async def test_a_query_is_synthesised_stored_and_acked(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    (job_id,) = await queue.enqueue([QueryItem(query="  deck   over ", num_rewrites=2, top_k=5)])
    pipeline = ScriptedPipeline()
    worker = make_worker(redis, settings, pipeline, tmp_path)
    await run_until(worker, lambda: redis.xlen(settings.done_key))
    (done,) = records(await redis.xrange(settings.done_key))
    assert done["job_id"] == job_id and done["query"] == "deck over"
    assert json.loads(done["pair_ids"]) == [pair_id("deck over", "P-deck over")]
    assert done["appended"] == "1" and done["worker"] == "w1"
    assert pipeline.calls == ["deck over"]
    assert await queue.status() == {"length": 0, "pending": 0, "lag": 0, "dead": 0, "done": 1}
    assert await redis.xlen(f"{settings.stream_key}:pairs") == 1


async def test_a_failing_query_is_retried_then_dead_lettered_with_its_error(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    (job_id,) = await queue.enqueue([QueryItem(query="poison")])
    failure = BackendError("judge", grpc.StatusCode.INTERNAL, "model exploded")
    pipeline = ScriptedPipeline(failure, failure, failure, failure)
    await run_until(make_worker(redis, settings, pipeline, tmp_path), lambda: redis.xlen(settings.dead_key))
    assert pipeline.calls == ["poison"] * 3
    (dead,) = records(await redis.xrange(settings.dead_key))
    assert dead["job_id"] == job_id and dead["attempts"] == "3"
    assert "model exploded" in dead["error"]
    status = await queue.status()
    assert (status["length"], status["pending"], status["done"]) == (0, 0, 0)


async def test_an_unavailable_backend_is_waited_for_not_counted(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    await queue.enqueue([QueryItem(query="bath thermometer")])
    down = BackendError("judge", grpc.StatusCode.UNAVAILABLE, "connection refused")
    pipeline = ScriptedPipeline(down, down, down)  # as many outages as max_attempts: none is counted
    await run_until(make_worker(redis, settings, pipeline, tmp_path), lambda: redis.xlen(settings.done_key))
    assert len(pipeline.calls) == 4
    assert await redis.xlen(settings.dead_key) == 0


async def test_a_dead_workers_query_is_taken_over(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    await queue.ensure_group()
    await queue.enqueue([QueryItem(query="salon chair")])
    (taken,) = await queue.read_new("crashed-worker", 10, 100)  # read, then the worker "died"
    assert taken.attempts == 0
    pipeline = ScriptedPipeline()
    await run_until(make_worker(redis, settings, pipeline, tmp_path), lambda: redis.xlen(settings.done_key))
    (done,) = records(await redis.xrange(settings.done_key))
    assert done["worker"] == "w1" and pipeline.calls == ["salon chair"]
    assert (await queue.status())["pending"] == 0


async def test_a_query_that_keeps_killing_workers_is_dead_lettered(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    await queue.ensure_group()
    await queue.enqueue([QueryItem(query="crasher")])
    (job,) = await queue.read_new("victim-0", 10, 100)
    for n in range(1, 3):  # two more workers took it over and died too (each takeover is a delivery)
        await redis.xclaim(settings.stream_key, settings.group, f"victim-{n}", 0, [job.entry_id])
    pipeline = ScriptedPipeline()
    await run_until(make_worker(redis, settings, pipeline, tmp_path), lambda: redis.xlen(settings.dead_key))
    assert pipeline.calls == []
    (dead,) = records(await redis.xrange(settings.dead_key))
    assert "taken over 3 times" in dead["error"]


async def test_an_unreadable_entry_is_dead_lettered_with_the_reason(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    await QueryQueue(redis, settings).ensure_group()
    await redis.xadd(settings.stream_key, {"query": "   ", "top_k": "5"})
    await redis.xadd(settings.stream_key, {"query": "ok", "top_k": "lots"})
    pipeline = ScriptedPipeline()
    await run_until(
        make_worker(redis, settings, pipeline, tmp_path), lambda: _at_least(redis, settings.dead_key, 2)
    )
    errors = sorted(r["error"] for r in records(await redis.xrange(settings.dead_key)))
    assert "empty" in errors[0] and "lots" in errors[1]
    assert pipeline.calls == []


async def test_heartbeats_keep_a_slow_query_with_its_worker(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    queue = QueryQueue(redis, settings)
    await queue.enqueue([QueryItem(query="slow one")])
    slow = ScriptedPipeline(3.0)  # three times claim_idle_ms
    other = ScriptedPipeline()
    first = make_worker(redis, settings, slow, tmp_path)
    second = make_worker(redis, settings.model_copy(update={"consumer": "w2"}), other, tmp_path)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    while not await _pending(queue):  # the first worker holds the entry before the second starts
        await asyncio.sleep(0.01)
    second_task = asyncio.create_task(second.run(stop_second))
    async with asyncio.timeout(20):
        while not await redis.xlen(settings.done_key):
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    stop_first.set()
    stop_second.set()
    await asyncio.gather(first_task, second_task)
    assert slow.calls == ["slow one"] and other.calls == []
    assert await redis.xlen(settings.done_key) == 1


async def test_shutdown_hands_unfinished_queries_back_at_once(
    redis: Redis, settings: QueueSettings, tmp_path: Path
) -> None:
    slow_settings = settings.model_copy(update={"claim_idle_ms": 60_000, "grace_s": 0.2})
    queue = QueryQueue(redis, slow_settings)
    await queue.enqueue([QueryItem(query="long one")])
    stopping = make_worker(redis, slow_settings, ScriptedPipeline(30.0), tmp_path)
    await run_until(stopping, lambda: _pending(queue))  # stops as soon as it holds the entry
    # Handed back: the next worker takes it over now, not after claim_idle_ms (60 s).
    nxt = make_worker(
        redis, slow_settings.model_copy(update={"consumer": "w2"}), ScriptedPipeline(), tmp_path
    )
    await run_until(nxt, lambda: redis.xlen(slow_settings.done_key), timeout_s=10)
    (done,) = records(await redis.xrange(slow_settings.done_key))
    assert done["worker"] == "w2"


async def _at_least(redis: Redis, key: str, n: int) -> bool:
    return int(await redis.xlen(key)) >= n


async def _pending(queue: QueryQueue) -> bool:
    return bool((await queue.status())["pending"])
