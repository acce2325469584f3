"""FastAPI gateway: create_app() whose lifespan owns the Redis pool and the gRPC channels."""

from __future__ import annotations

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
from services.gateway.routes import health, synthesize
from services.pipeline.clients import BackendError
from services.pipeline.config import PipelineSettings
from services.pipeline.synthesize import SynthesisPipeline
from services.store.config import StoreSettings
from services.store.stream import TrainingStream

log = logging.getLogger(__name__)

BACKEND_STATUS = {grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504}


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
        return JSONResponse({"detail": f"{error.service} failed: {error.code.name}: {error.detail}"}, status)

    @app.exception_handler(RedisError)
    async def redis_down(request: Request, error: RedisError) -> JSONResponse:
        log.error("redis failure: %s", error)
        return JSONResponse({"detail": f"redis unavailable: {type(error).__name__}"}, status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse({"detail": "internal error; see the gateway log"}, status_code=500)


def create_app(
    settings: GatewaySettings | None = None,
    pipeline_settings: PipelineSettings | None = None,
    store_settings: StoreSettings | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    pipeline_settings = pipeline_settings or PipelineSettings()
    store_settings = store_settings or StoreSettings()
    if not settings.redis_url:
        raise ConfigError("TAILSYNTH_REDIS_URL is not set (`synth up` sets it to its embedded server)")
    redis_url = settings.redis_url

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
        pipeline = SynthesisPipeline(pipeline_settings)
        app.state.resources = Resources(
            settings=settings,
            redis=redis,
            pipeline=pipeline,
            cache=ResultCache(redis, settings.cache_ttl_s),
            stream=TrainingStream(redis, store_settings.stream_key, store_settings.seen_key),
        )
        try:
            yield
        finally:
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
    app.include_router(health.router)

    @app.middleware("http")
    async def count_requests(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        route = request.scope.get("route")
        REQUESTS.labels(getattr(route, "path", "unmatched"), f"{response.status_code // 100}xx").inc()
        return response

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    return app
