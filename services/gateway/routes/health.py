"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

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


class RedisHealth(BaseModel):
    reachable: bool = Field(description="Redis answered a PING within the gateway's Redis budget.")
    breaker: Literal["closed", "half_open", "open"] = Field(
        description="closed: Redis is called; open: calls fail at once (after repeated failures) until one "
        "trial call (half_open) succeeds."
    )


class SpoolHealth(BaseModel):
    batches: int = Field(description="Batches of accepted pairs waiting in the local spool for Redis.")
    oldest_age_s: float | None = Field(description="How long the oldest batch has waited; null when empty.")


class Readiness(BaseModel):
    ready: bool = Field(description="Every backend service answers SERVING (the HTTP status is 200 iff so).")
    status: Literal["ready", "degraded", "unavailable"] = Field(
        description="ready: all is well; degraded: serving, but see `degraded`; unavailable: a backend "
        "service is not SERVING (503)."
    )
    degraded: list[str] = Field(
        description="Why the gateway is degraded: Redis unreachable, accepted pairs waiting in the spool, a "
        "backend flapping. Empty when ready."
    )
    checks: dict[str, bool] = Field(description="rewriter, retriever, judge (required) and redis (reported).")
    redis: RedisHealth
    spool: SpoolHealth
    state_changes: dict[str, int] = Field(
        description="Health state changes of each backend within the flap window "
        "(TAILSYNTH_GATEWAY_FLAP_WINDOW_S); TAILSYNTH_GATEWAY_FLAP_CHANGES of them is flapping."
    )
    spooled_batches: int = Field(description="Same as spool.batches (kept for existing probes and scripts).")
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
    """Readiness: 200 when every backend service answers SERVING, 503 otherwise.

    Redis, the spool and flapping backends do not change the status code (without Redis synthesis still
    answers, uncached, and accepted pairs wait in the spool; taking every gateway out of a load balancer
    would not bring Redis back); they are reported in `status` and `degraded`.
    """

    async def version() -> str | None:
        try:
            return await asyncio.wait_for(resources.pipeline.version(allow_stale=True), timeout=2.0)
        except Exception:
            return None

    health, pipeline_version = await asyncio.gather(resources.monitor.check(), version())
    body = Readiness(
        ready=health.ready,
        status=health.status,
        degraded=health.degraded,
        checks={**health.backends, "redis": health.redis_reachable},
        redis=RedisHealth(reachable=health.redis_reachable, breaker=health.breaker.value),
        spool=SpoolHealth(batches=health.spooled_batches, oldest_age_s=health.spool_oldest_age_s),
        state_changes=health.changes,
        spooled_batches=health.spooled_batches,
        pipeline_version=pipeline_version,
    )
    return JSONResponse(body.model_dump(), status_code=200 if health.ready else 503)


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
