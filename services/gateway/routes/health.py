"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from services.gateway.deps import ResourcesDep
from services.gateway.metrics import QUEUE_ENTRIES

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the gateway process answers."""
    return {"status": "ok"}


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool] = Field(description="rewriter, retriever, judge (required) and redis (reported).")
    spooled_batches: int = Field(
        description="Batches of accepted pairs waiting for Redis in the local spool."
    )
    pipeline_version: str | None = Field(
        None,
        description="The version new syntheses are made and cached under (tailsynth version + hash of "
        "what every service serves); null while a backend cannot describe itself.",
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A backend service is not SERVING."}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    """Readiness: 200 when every backend service answers SERVING.

    Redis is reported but not required: without it synthesis still answers (uncached) and accepted
    pairs wait in the local spool (`spooled_batches`) until it is back.
    """

    async def redis_ok() -> bool:
        try:
            return bool(await asyncio.wait_for(resources.redis.ping(), timeout=2.0))
        except Exception:
            return False

    async def version() -> str | None:
        try:
            return await asyncio.wait_for(resources.pipeline.version(allow_stale=True), timeout=2.0)
        except Exception:
            return None

    backends, redis, pipeline_version = await asyncio.gather(
        resources.pipeline.healthy(), redis_ok(), version()
    )
    ready = all(backends.values())
    body = Readiness(
        ready=ready,
        checks={**backends, "redis": redis},
        spooled_batches=len(resources.writer.spool.batches()),
        pipeline_version=pipeline_version,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
)
async def metrics(resources: ResourcesDep) -> Response:
    """Prometheus exposition of the tailsynth_gateway_* metrics; the queue gauges are sampled now."""
    try:
        status = await asyncio.wait_for(resources.queue.status(), timeout=1.0)
    except Exception as error:  # a scrape must not fail because Redis is down; the gauges go stale
        log.warning("queue gauges not sampled: %s", error)
    else:
        # No lag before the workers' first read: then every entry is unread.
        lag = status["lag"] if status["lag"] is not None else status["length"]
        for state, value in {**status, "lag": lag}.items():
            if state != "done":
                QUEUE_ENTRIES.labels(state).set(value or 0)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
