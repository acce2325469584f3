"""FastAPI gateway: create_app() whose lifespan owns the Redis pool, the gRPC channels and the spool replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis

from services import __version__
from services.core.errors import ConfigError
from services.gateway.auth import load_keys
from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.gateway.deps import Resources
from services.gateway.errors import install_error_handlers
from services.gateway.middleware import BodyLimit, RequestContext
from services.gateway.ratelimit import RateLimiter
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
        redis = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        pipeline = SynthesisPipeline(pipeline_settings)
        stream = TrainingStream(redis, store.stream_key, store.seen_key)
        writer = PairWriter(stream, Spool(store.spool_path))
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
        )
        stop_replay = asyncio.Event()
        replay = asyncio.create_task(writer.replay_until(stop_replay, store.replay_interval_s))
        try:
            yield
        finally:
            stop_replay.set()
            await replay
            await pipeline.close()
            await redis.aclose()

    app = FastAPI(
        title="tailsynth",
        version=__version__,
        summary="Synthesize judged query-product training pairs for e-commerce retrieval.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(synthesize.router)
    app.include_router(product.router)
    app.include_router(queue.router)
    app.include_router(health.router)
    if settings.debug_page:
        app.include_router(debug.router)

    # Added innermost first: the request id is bound before anything else runs.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
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
