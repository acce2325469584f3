"""Typed FastAPI dependencies; the lifespan in app.py puts Resources on app.state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import ANONYMOUS, ApiKey, digest
from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.gateway.metrics import AUTH_FAILURES, RATE_LIMITED
from services.gateway.monitor import HealthMonitor
from services.gateway.ratelimit import RateLimiter
from services.gateway.redis_budget import BudgetedRedis
from services.pipeline.product_queries import ProductQueries
from services.pipeline.synthesize import SynthesisPipeline
from services.store.writer import PairWriter
from services.worker.queue import QueryQueue


@dataclass
class Resources:
    settings: GatewaySettings
    redis: BudgetedRedis  # calls under the gateway's Redis budget and breaker
    pipeline: SynthesisPipeline
    products: ProductQueries
    cache: ResultCache
    writer: PairWriter
    queue: QueryQueue
    keys: dict[str, ApiKey]  # by SHA-256 digest; empty: the API is open
    limiter: RateLimiter
    monitor: HealthMonitor


async def get_resources(request: Request) -> Resources:  # async: no thread-pool hop per request
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")


async def charge(resources: Resources, key: ApiKey, cost: int) -> None:
    """Take `cost` requests from the key's rate limit, or refuse with 429 and Retry-After."""
    per_minute = key.per_minute or resources.settings.rate_limit_per_minute
    if not per_minute:
        return
    verdict = await resources.limiter.charge(key.name, per_minute, cost)
    if not verdict.allowed:
        RATE_LIMITED.labels(key.name).inc()
        raise HTTPException(
            429,
            f"rate limit of {per_minute} requests per minute reached for key {key.name!r}",
            headers={"Retry-After": str(verdict.retry_after_s)},
        )


async def api_key(
    resources: ResourcesDep,
    x_api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> ApiKey:
    """The caller's key (when keys are configured), charged one request of its rate limit."""
    key = ANONYMOUS
    if resources.keys:
        presented = x_api_key or (bearer.credentials if bearer else None)
        if not presented:
            AUTH_FAILURES.labels("missing").inc()
            raise HTTPException(
                401,
                "an API key is required: send `Authorization: Bearer KEY` or `X-API-Key: KEY`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        found = resources.keys.get(digest(presented))
        if found is None:
            AUTH_FAILURES.labels("invalid").inc()
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        key = found
    await charge(resources, key, 1)
    return key


ApiKeyDep = Annotated[ApiKey, Depends(api_key)]
