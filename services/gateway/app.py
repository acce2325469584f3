"""FastAPI gateway: create_app() whose lifespan owns the Redis pool, the gRPC channels and the spool replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from services import __version__
from services.core.errors import ConfigError
from services.gateway.auth import load_keys
from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.gateway.deps import Resources
from services.gateway.errors import install_error_handlers
from services.gateway.metrics import REDIS_BREAKER_STATE, REDIS_CALLS
from services.gateway.middleware import BodyLimits, RequestContext
from services.gateway.monitor import HealthMonitor
from services.gateway.ratelimit import RateLimiter
from services.gateway.redis_budget import BreakerState, CallBudget, CircuitBreaker, budgeted_client
from services.gateway.routes import debug, health, product, queue, synthesize
from services.pipeline.config import PipelineSettings
from services.pipeline.product_queries import ProductQueries
from services.pipeline.synthesize import SynthesisPipeline
from services.store.config import StoreSettings
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter
from services.worker.config import QueueSettings
from services.worker.queue import QueryQueue

BREAKER_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


def redis_budget(settings: GatewaySettings) -> CallBudget:
    """The budget of the gateway's Redis calls, reported as tailsynth_gateway_redis_* metrics."""
    REDIS_BREAKER_STATE.set(0)
    breaker = CircuitBreaker(
        settings.redis_breaker_failures,
        settings.redis_breaker_reset_s,
        on_change=lambda state: REDIS_BREAKER_STATE.set(BREAKER_LEVELS[state]),
    )
    return CallBudget(
        breaker, settings.redis_timeout_s, observe=lambda outcome: REDIS_CALLS.labels(outcome).inc()
    )


def state_limits_in_schema(app: FastAPI, batch_max_queries: int, max_enqueue: int) -> None:
    """The OpenAPI schema states the configured list limits the routes enforce (maxItems)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            models = schema["components"]["schemas"]
            models["BatchRequest"]["properties"]["queries"]["maxItems"] = batch_max_queries
            models["EnqueueRequest"]["properties"]["queries"]["maxItems"] = max_enqueue
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: GatewaySettings | None = None,
    pipeline_settings: PipelineSettings | None = None,
    store_settings: StoreSettings | None = None,
    queue_settings: QueueSettings | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    pipeline_settings = pipeline_settings or PipelineSettings()
    store = store_settings or StoreSettings()
    queue_config = queue_settings or QueueSettings()
    if not settings.redis_url:
        raise ConfigError("TAILSYNTH_REDIS_URL is not set (`synth up` sets it to its embedded server)")
    redis_url = settings.redis_url
    keys = load_keys(settings.api_keys, settings.api_keys_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = budgeted_client(redis_url, redis_budget(settings))
        pipeline = SynthesisPipeline(pipeline_settings)
        stream = TrainingStream(redis, store.stream_key, store.seen_key)
        spool = Spool(store.spool_path)
        writer = PairWriter(stream, spool)
        monitor = HealthMonitor(pipeline, redis, spool, settings.flap_window_s, settings.flap_changes)
        app.state.resources = Resources(
            settings=settings,
            redis=redis,
            pipeline=pipeline,
            products=ProductQueries(pipeline),
            cache=ResultCache(redis, settings.cache_ttl_s),
            writer=writer,
            queue=QueryQueue(redis, queue_config),
            keys=keys,
            limiter=RateLimiter(redis),
            monitor=monitor,
        )
        stop = asyncio.Event()
        background = [
            asyncio.create_task(writer.replay_until(stop, store.replay_interval_s)),
            asyncio.create_task(monitor.run(stop, settings.health_interval_s)),
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*background)
            await pipeline.close()
            await redis.aclose()

    app = FastAPI(
        title="tailsynth",
        version=__version__,
        summary="Synthesize judged query-product training pairs for e-commerce retrieval.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    state_limits_in_schema(app, settings.batch_max_queries, queue_config.max_enqueue)
    app.include_router(synthesize.router)
    app.include_router(product.router)
    app.include_router(queue.router)
    app.include_router(health.router)
    if settings.debug_page:
        app.include_router(debug.router)

    # Added innermost first: the request id is bound before anything else runs.
    app.add_middleware(BodyLimits, max_bytes=settings.max_body_bytes, timeout_s=settings.read_timeout_s)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContext)
    return app
