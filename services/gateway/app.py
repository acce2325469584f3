"""FastAPI gateway: create_app() whose lifespan owns the Redis pool, the gRPC channels and the spool replay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import __version__
from services.core.errors import ConfigError
from services.gateway.cache import ResultCache
from services.gateway.config import GatewaySettings
from services.gateway.deps import Resources
from services.gateway.metrics import REQUESTS
from services.gateway.routes import health, queue, synthesize
from services.pipeline.clients import BackendError
from services.pipeline.config import PipelineSettings
from services.pipeline.synthesize import SynthesisPipeline
from services.store.config import StoreSettings
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter
from services.worker.config import QueueSettings
from services.worker.queue import QueryQueue

log = logging.getLogger(__name__)

BACKEND_STATUS = {grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504}
# Seconds a client should wait before retrying after a 503: about one reconnect of the gRPC channel.
RETRY_AFTER_S = "2"


class BodyLimit:
    """Refuse request bodies over a size limit with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._too_large(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, status_code=413)
        await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _validation_details(error: RequestValidationError) -> list[dict[str, object]]:
    """Where and what, without echoing the (possibly huge) input back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_details(error)}, status_code=422)

    @app.exception_handler(BackendError)
    async def backend(request: Request, error: BackendError) -> JSONResponse:
        status = BACKEND_STATUS.get(error.code, 502)
        log.warning("backend failure: %s", error)
        headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        detail = f"{error.service} failed: {error.code.name}: {error.detail}"
        return JSONResponse({"detail": detail}, status, headers=headers)

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, error: RedisError) -> JSONResponse:
        log.error("redis failure: %s", error)
        detail = f"redis unavailable: {type(error).__name__}"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": RETRY_AFTER_S})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; see the gateway log"}, status_code=500)


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
            cache=ResultCache(redis, settings.cache_ttl_s),
            writer=writer,
            queue=QueryQueue(redis, queue_config),
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
    _install_error_handlers(app)
    app.include_router(synthesize.router)
    app.include_router(queue.router)
    app.include_router(health.router)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        route = request.scope.get("route")
        REQUESTS.labels(getattr(route, "path", "unmatched"), f"{response.status_code // 100}xx").inc()
        return response

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
