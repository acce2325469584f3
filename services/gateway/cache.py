"""Synthesis results cached in Redis, keyed by (normalised query, parameters, pipeline version).

Entries are stored as the response body itself (with `cached: true`), so a hit on POST
/v1/synthesize is served without parsing or re-serialising 20 kB of JSON. The pipeline version in
the key changes whenever what a synthesis returns may change (services.pipeline.synthesize).

The cache is an optimisation: while Redis is unreachable, lookups miss and stores are skipped, so
synthesis keeps answering (uncached) instead of failing.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.pipeline.ids import cache_key
from services.pipeline.models import SynthesisResult
from services.pipeline.synthesize import SynthesisRequest

log = logging.getLogger(__name__)


class ResultCache:
    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s

    @staticmethod
    def key(request: SynthesisRequest, version: str) -> str:
        return cache_key(request.query, request.num_rewrites, request.top_k, version, request.origin)

    async def get(self, request: SynthesisRequest, version: str) -> bytes | None:
        """The cached response body, or None."""
        try:
            raw = await self.redis.get(self.key(request, version))
        except RedisError as error:
            log.warning("cache lookup skipped, redis unavailable: %s", error)
            return None
        return raw.encode() if isinstance(raw, str) else raw

    @staticmethod
    def parse(raw: bytes) -> SynthesisResult | None:
        try:
            return SynthesisResult.model_validate_json(raw)
        except ValidationError:
            log.warning("ignoring an unreadable cache entry")
            return None

    async def put(self, request: SynthesisRequest, version: str, result: SynthesisResult) -> None:
        body = result.model_copy(update={"cached": True}).model_dump_json()
        try:
            await self.redis.set(self.key(request, version), body, ex=self.ttl_s)
        except RedisError as error:
            log.warning("result not cached, redis unavailable: %s", error)
