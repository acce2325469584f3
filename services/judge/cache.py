"""Judgment cache: engine scores in Redis, keyed by (engine version, pair kind, query, text).

Engine scores are cached, not policy decisions: a new threshold or weight re-decides from cached
scores, while a new engine version (weights, calibration) misses by construction. Keys are content
hashes, so a 20,000-character text costs 64 bytes of key.

The cache is an optimisation: when Redis fails, the judge scores without it (logged, counted) and
does not try Redis again for `RETRY_AFTER_S`, so an outage costs no request more than one timeout.

Metrics:
- tailsynth_judge_cache_lookups_total{engine, result}: pairs looked up; result = hit, miss or skipped
  (cache unavailable).
- tailsynth_judge_cache_errors_total{op}: failed Redis round trips (op = get or set).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.judge.engine import Pair

log = logging.getLogger(__name__)

KEY_PREFIX = "tailsynth:judge:score:"
RETRY_AFTER_S = 5.0

LOOKUPS = Counter(
    "tailsynth_judge_cache_lookups_total",
    "Judgment cache lookups (pairs), by engine and result (hit, miss, skipped).",
    ["engine", "result"],
)
ERRORS = Counter("tailsynth_judge_cache_errors_total", "Failed judgment cache round trips to Redis.", ["op"])


def cache_key(engine: str, version: str, pair: Pair) -> str:
    query, text, kind = pair
    digest = hashlib.sha256(json.dumps([version, kind.value, query, text]).encode()).hexdigest()
    return f"{KEY_PREFIX}{engine}:{digest}"


class ScoreCache:
    def __init__(self, url: str, ttl_s: int, timeout_s: float) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.redis = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, op: str, error: Exception) -> None:
        ERRORS.labels(op).inc()
        if self.available:
            log.warning(
                "judgment cache unavailable (%s: %r); scoring without it for %.0fs", op, error, RETRY_AFTER_S
            )
        self._down_until = time.monotonic() + RETRY_AFTER_S

    async def get_many(self, engine: str, version: str, pairs: Sequence[Pair]) -> list[float | None]:
        """Cached score per pair, None where there is none (or Redis is unavailable)."""
        if not pairs:
            return []
        if not self.available:
            LOOKUPS.labels(engine, "skipped").inc(len(pairs))
            return [None] * len(pairs)
        try:
            raw = await self.redis.mget([cache_key(engine, version, p) for p in pairs])
        except (RedisError, OSError) as error:
            self._failed("get", error)
            LOOKUPS.labels(engine, "skipped").inc(len(pairs))
            return [None] * len(pairs)
        scores = [_parse(value) for value in raw]
        hits = sum(s is not None for s in scores)
        LOOKUPS.labels(engine, "hit").inc(hits)
        LOOKUPS.labels(engine, "miss").inc(len(pairs) - hits)
        return scores

    async def set_many(
        self, engine: str, version: str, pairs: Sequence[Pair], scores: Sequence[float]
    ) -> None:
        if not pairs or not self.available:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for pair, score in zip(pairs, scores, strict=True):
                    pipe.set(cache_key(engine, version, pair), repr(score), ex=self.ttl_s)
                await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed("set", error)

    async def close(self) -> None:
        await self.redis.aclose()


def _parse(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    try:
        score = float(value)
    except ValueError:
        return None
    return score if math.isfinite(score) and 0 <= score <= 1 else None
