"""Accepted pairs -> the training store's Redis Stream, each pair exactly once.

A Lua script adds the pair id to a set and appends to the stream only when the id is new, so a
pair synthesised twice (or by two gateways at once) enters the stream once.
"""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

from services.pipeline.models import SynthesisResult

APPEND_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
end
return false
"""

FIELDS = (
    "pair_id",
    "query",
    "product_id",
    "title",
    "score",
    "label",
    "rewrite",
    "retrieved_by",
    "pipeline_version",
    "created_at",
)


def stream_entries(result: SynthesisResult) -> list[dict[str, str]]:
    """One flat string record per accepted pair."""
    now = f"{time.time():.3f}"
    entries = []
    for pair in result.pairs:
        if not pair.accepted:
            continue
        rewrite = next((text for text in pair.retrieved_by if text != result.query), "")
        entries.append(
            {
                "pair_id": pair.pair_id,
                "query": result.query,
                "product_id": pair.product_id,
                "title": pair.title,
                "score": f"{pair.score:.4f}",
                "label": pair.label,
                "rewrite": rewrite,
                "retrieved_by": json.dumps(pair.retrieved_by, ensure_ascii=False),
                "pipeline_version": result.pipeline_version,
                "created_at": now,
            }
        )
    return entries


class TrainingStream:
    def __init__(self, redis: Redis, stream_key: str, seen_key: str) -> None:
        self.redis = redis
        self.stream_key = stream_key
        self.seen_key = seen_key
        self.script = redis.register_script(APPEND_ONCE)

    async def append(self, result: SynthesisResult) -> int:
        """Append the result's accepted pairs; return how many were new."""
        return await self.append_entries(stream_entries(result))

    async def append_entries(self, entries: list[dict[str, str]]) -> int:
        """Append entries shaped by stream_entries(); return how many were new."""
        if not entries:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                args = [entry["pair_id"]] + [x for name in FIELDS for x in (name, entry[name])]
                await self.script(keys=[self.seen_key, self.stream_key], args=args, client=pipe)
            replies = await pipe.execute()
        return sum(1 for reply in replies if reply)
