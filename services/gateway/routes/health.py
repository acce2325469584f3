"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.deps import ResourcesDep

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the gateway process answers."""
    return {"status": "ok"}


@router.get("/readyz")
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

    backends, redis = await asyncio.gather(resources.pipeline.healthy(), redis_ok())
    ready = all(backends.values())
    body = {
        "ready": ready,
        "checks": {**backends, "redis": redis},
        "spooled_batches": len(resources.writer.spool.batches()),
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus exposition of the tailsynth_gateway_* metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
