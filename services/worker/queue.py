"""The query queue: a Redis Stream that the synthesis workers read as one consumer group.

An entry is a query with its parameters, a job id that survives retries, its failed attempts and
last error. Its life:
- enqueue: XADD.
- a worker reads it (XREADGROUP) or takes it over from a dead worker (XAUTOCLAIM, idle longer than
  claim_idle_ms). While working, the worker heartbeats (XCLAIM JUSTID) so a live worker's entry is
  never taken over.
- done: a completion record goes to <stream>:done and the entry is acked and deleted, in one MULTI.
- failed: the entry is re-added with attempts + 1 and the error, or after max_attempts moved to
  <stream>:dead with the error, again in one MULTI with the ack.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from services.core.consumers import as_text, ensure_group, stream_entries
from services.pipeline.models import DEFAULT_NUM_REWRITES, DEFAULT_TOP_K, QueryItem
from services.worker.config import QueueSettings


@dataclass(frozen=True)
class Job:
    entry_id: str
    fields: dict[str, str]
    deliveries: int  # times Redis handed this entry to a worker (1 = first read)
    item: QueryItem | None  # None when the entry is unreadable; see problem
    problem: str = ""

    @property
    def job_id(self) -> str:
        return self.fields.get("job_id") or self.entry_id

    @property
    def attempts(self) -> int:
        """Failed attempts so far: recorded failures plus deliveries to workers that died."""
        recorded = self.fields.get("attempts", "0")
        return (int(recorded) if recorded.isdigit() else 0) + self.deliveries - 1


def parse_job(entry_id: str, fields: dict[str, str], deliveries: int) -> Job:
    try:
        item = QueryItem(
            query=fields.get("query", ""),
            num_rewrites=int(fields.get("num_rewrites", DEFAULT_NUM_REWRITES)),
            top_k=int(fields.get("top_k", DEFAULT_TOP_K)),
            origin=fields.get("origin", ""),  # entries queued before origins existed are logged queries
        )
    except (ValueError, ValidationError) as error:
        reason = (
            "; ".join(e["msg"] for e in error.errors()) if isinstance(error, ValidationError) else str(error)
        )
        return Job(entry_id, fields, deliveries, None, f"unreadable queue entry: {reason}")
    return Job(entry_id, fields, deliveries, item)


class QueryQueue:
    def __init__(self, redis: Redis, settings: QueueSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.key = settings.stream_key
        self.group = settings.group
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> None:
        await ensure_group(self.redis, self.key, self.group)

    async def enqueue(self, items: list[QueryItem]) -> list[str]:
        """Append queries; return their job ids in order."""
        job_ids = [uuid.uuid4().hex for _ in items]
        now = f"{time.time():.3f}"
        async with self.redis.pipeline(transaction=True) as pipe:  # all of the batch or none of it
            for job_id, item in zip(job_ids, items, strict=True):
                fields = {
                    "job_id": job_id,
                    "query": item.query,
                    "num_rewrites": str(item.num_rewrites),
                    "top_k": str(item.top_k),
                    "origin": item.origin,
                    "attempts": "0",
                    "enqueued_at": now,
                }
                pipe.xadd(self.key, fields)  # type: ignore[arg-type]
            await pipe.execute()
        return job_ids

    async def read_new(self, consumer: str, count: int, block_ms: int) -> list[Job]:
        reply: Any = await self.redis.xreadgroup(self.group, consumer, {self.key: ">"}, count, block_ms)
        return [parse_job(i, f, 1) for _, batch in reply or [] for i, f in stream_entries(batch)]

    async def claim_stale(self, consumer: str, count: int) -> list[Job]:
        """Take over entries that a dead worker left pending for longer than claim_idle_ms."""
        reply: Any = await self.redis.xautoclaim(
            self.key, self.group, consumer, self.settings.claim_idle_ms, self._claim_cursor, count=count
        )
        self._claim_cursor = as_text(reply[0])
        entries = stream_entries(reply[1])
        if not entries:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(self.key, self.group, entry_id, entry_id, 1)
            pending = await pipe.execute()
        deliveries = [int(p[0]["times_delivered"]) if p else 1 for p in pending]
        return [parse_job(i, f, d) for (i, f), d in zip(entries, deliveries, strict=True)]

    async def heartbeat(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries this worker is still working on (delivery count unchanged)."""
        if entry_ids:
            await self.redis.xclaim(self.key, self.group, consumer, 0, list[Any](entry_ids), justid=True)

    async def release(self, consumer: str, entry_ids: list[str]) -> None:
        """Hand unfinished entries back at shutdown: mark them idle so any worker takes them over now."""
        if entry_ids:
            idle = self.settings.claim_idle_ms
            await self.redis.xclaim(
                self.key, self.group, consumer, 0, list[Any](entry_ids), idle=idle, justid=True
            )

    async def complete(self, job: Job, record: dict[str, str]) -> None:
        await self._finish(job, self.settings.done_key, {"job_id": job.job_id, **record})

    async def retry(self, job: Job, error: str) -> None:
        fields = {**job.fields, "job_id": job.job_id, "attempts": str(job.attempts + 1), "last_error": error}
        await self._finish(job, self.key, fields)

    async def dead_letter(self, job: Job, error: str, worker: str) -> None:
        fields = {
            **job.fields,
            "job_id": job.job_id,
            "attempts": str(job.attempts + 1),
            "error": error,
            "worker": worker,
            "failed_at": f"{time.time():.3f}",
        }
        await self._finish(job, self.settings.dead_key, fields)

    async def _finish(self, job: Job, target: str, fields: dict[str, str]) -> None:
        """Append fields to target, ack and delete the entry: all or nothing."""
        async with self.redis.pipeline(transaction=True) as pipe:
            if target == self.settings.done_key and self.settings.done_maxlen:
                pipe.xadd(target, fields, maxlen=self.settings.done_maxlen, approximate=True)  # type: ignore[arg-type]
            else:
                pipe.xadd(target, fields)  # type: ignore[arg-type]
            pipe.xack(self.key, self.group, job.entry_id)
            pipe.xdel(self.key, job.entry_id)
            await pipe.execute()

    async def status(self) -> dict[str, int | None]:
        await self.ensure_group()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.key)
            pipe.xinfo_groups(self.key)
            pipe.xlen(self.settings.dead_key)
            pipe.xlen(self.settings.done_key)
            length, groups, dead, done = await pipe.execute()
        group: dict[str, Any] = next((g for g in groups if as_text(g["name"]) == self.group), {})
        lag = group.get("lag")
        return {
            "length": int(length),
            "pending": int(group.get("pending", 0)),
            "lag": None if lag is None else int(lag),
            "dead": int(dead),
            "done": int(done),
        }

    async def prune_consumers(self, idle_ms: int) -> int:
        """Forget consumers (workers that are gone) with nothing pending and idle for idle_ms."""
        removed = 0
        for consumer in await self.redis.xinfo_consumers(self.key, self.group):
            if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_ms:
                await self.redis.xgroup_delconsumer(self.key, self.group, as_text(consumer["name"]))
                removed += 1
        return removed


def completion_record(
    query: str, pair_ids: list[str], appended: int, spooled: int, version: str, worker: str
) -> dict[str, str]:
    return {
        "query": query,
        "accepted": str(len(pair_ids)),
        "appended": str(appended),
        "spooled": str(spooled),
        "pair_ids": json.dumps(pair_ids),
        "pipeline_version": version,
        "worker": worker,
        "finished_at": f"{time.time():.3f}",
    }
