"""One synthesis as the HTTP API serves it: cache lookup, the pipeline's stages, metrics, store, cache.

The plain, streaming and batch endpoints all go through lookup() and fresh_stages() (the stream and
the batch by way of synthesis_stages()); they differ only in how much of it they show the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic import BaseModel, Field

from services.gateway.cache import ResultCache
from services.gateway.deps import Resources
from services.gateway.metrics import CACHE, PAIRS, STAGE_SECONDS
from services.gateway.schemas import SynthesizeRequest
from services.pipeline.models import SynthesisResult
from services.pipeline.synthesize import Stage, SynthesisRequest
from services.store.writer import Written

log = logging.getLogger(__name__)


class Started(BaseModel):
    query: str
    pipeline_version: str
    cached: bool


class Stored(BaseModel):
    new: int = Field(description="Accepted pairs new to the training store.")
    duplicates: int = Field(description="Accepted pairs the store already held (same query and product).")
    spooled: int = Field(description="Accepted pairs waiting in the local spool while Redis is unreachable.")


class StreamError(BaseModel):
    status: int = Field(description="What the plain endpoint would have answered.")
    detail: str


# Event names on the stream, by payload type.
EVENT_NAMES: dict[type[BaseModel], str] = {
    Started: "started",
    Stored: "stored",
    SynthesisResult: "result",
    StreamError: "error",
}


def event_name(payload: BaseModel) -> str:
    if type(payload) in EVENT_NAMES:
        return EVENT_NAMES[type(payload)]
    # RewritesStage -> rewrites, RetrievalStage -> retrieval, JudgmentsStage -> judgments
    return type(payload).__name__.removesuffix("Stage").lower()


@dataclass(frozen=True)
class Lookup:
    request: SynthesisRequest
    version: str
    cached: bytes | None  # the cached response body


async def lookup(body: SynthesizeRequest, resources: Resources) -> Lookup:
    request = SynthesisRequest(
        query=body.query, num_rewrites=body.num_rewrites, top_k=body.top_k, origin=body.origin
    )
    version = await resources.pipeline.version(allow_stale=body.use_cache)
    if not body.use_cache:
        CACHE.labels("bypass").inc()
        return Lookup(request, version, None)
    cached = await resources.cache.get(request, version)
    CACHE.labels("miss" if cached is None else "hit").inc()
    return Lookup(request, version, cached)


async def synthesis_stages(
    body: SynthesizeRequest, resources: Resources
) -> AsyncIterator[Started | Stage | Stored]:
    """Started, then the pipeline's stages and Stored; or, from the cache, Started and the result."""
    found = await lookup(body, resources)
    cached = ResultCache.parse(found.cached) if found.cached is not None else None
    if cached is not None:
        yield Started(query=cached.query, pipeline_version=cached.pipeline_version, cached=True)
        yield cached
        return
    async for stage in fresh_stages(found, resources):
        yield stage


async def fresh_stages(found: Lookup, resources: Resources) -> AsyncIterator[Started | Stage | Stored]:
    """Run the pipeline for a query the cache did not answer.

    The result is yielded only after its accepted pairs are in the store (or the spool): a caller that
    sees a result never sees pairs that could still be lost, and a client that goes away after the
    judgments cannot cancel the store write.
    """
    yield Started(query=found.request.query, pipeline_version=found.version, cached=False)
    async for stage in resources.pipeline.stages(found.request):
        if isinstance(stage, SynthesisResult):
            stored = await asyncio.shield(_store(resources, found.request, stage))
            yield stage
            yield stored
        else:
            yield stage


async def store_result(resources: Resources, result: SynthesisResult) -> Written:
    """Count the synthesis in the metrics and write it to the training store (or the spool)."""
    for stage, ms in result.timings_ms.items():
        STAGE_SECONDS.labels(stage).observe(ms / 1000)
    PAIRS.labels("accepted").inc(result.accepted_count)
    PAIRS.labels("rejected").inc(len(result.pairs) - result.accepted_count)
    return await resources.writer.write(result)


async def _store(resources: Resources, request: SynthesisRequest, result: SynthesisResult) -> Stored:
    # Store before caching: a result is only served from cache once its pairs are in the store.
    # A result some rewrite engine failed for is not cached: the next request tries every engine again.
    written = await store_result(resources, result)
    if not written.spooled and not result.diagnostics.rewriter_failures:
        await resources.cache.put(request, result.pipeline_version, result)
    log.info(
        "synthesized %r: %d of %d pairs accepted (%d new, %d spooled) in %.0f ms",
        result.query,
        result.accepted_count,
        len(result.pairs),
        written.appended,
        written.spooled,
        result.timings_ms.get("total", 0.0),
    )
    return Stored(new=written.appended, duplicates=written.duplicates, spooled=written.spooled)


async def result_of(stages: AsyncIterator[Started | Stage | Stored]) -> SynthesisResult:
    async for stage in stages:
        if isinstance(stage, SynthesisResult):
            return stage
    raise AssertionError("synthesis stages always include the result")
