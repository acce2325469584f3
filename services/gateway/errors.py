"""How failures look on the HTTP API: one mapping from exceptions to status codes and messages.

Used by the exception handlers and by the endpoints that report errors inside a 200 response
(per-query errors of a batch, the error event of a stream).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import grpc
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from services.gateway.metrics import BACKEND_ERRORS
from services.pipeline.clients import BackendError

log = logging.getLogger(__name__)

BACKEND_STATUS = {grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504}
# Seconds a client should wait before retrying after a 503: about one reconnect of the gRPC channel.
RETRY_AFTER_S = "2"


def validation_details(error: RequestValidationError | ValidationError) -> list[dict[str, object]]:
    """Where and what, without echoing the (possibly huge) input back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]


def failure(error: Exception) -> tuple[int, str]:
    """Status code and message for a failure while synthesizing; unexpected errors are logged."""
    if isinstance(error, BackendError):
        BACKEND_ERRORS.labels(error.service, error.code.name).inc()
        log.warning("backend failure: %s", error)
        return BACKEND_STATUS.get(
            error.code, 502
        ), f"{error.service} failed: {error.code.name}: {error.detail}"
    if isinstance(error, RedisError):
        log.error("redis failure: %s", error)
        return 503, f"redis unavailable: {type(error).__name__}"
    log.error("unhandled error", exc_info=error)
    return 500, "internal error; see the gateway log"


def _routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # newer FastAPI nests included routers
        if included is not None:
            yield from _routes(included.routes)  # (the gateway includes its routers without a prefix)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    Starlette's 405 names only the methods of the first route matching the path, and GET and POST
    /v1/queue are two routes.
    """
    methods: set[str] = set()
    for route in _routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 405:
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return await http_exception_handler(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_details(error)}, status_code=422)

    @app.exception_handler(BackendError)
    @app.exception_handler(RedisError)
    @app.exception_handler(Exception)
    async def failed(request: Request, error: Exception) -> JSONResponse:
        status, detail = failure(error)
        headers = {"Retry-After": RETRY_AFTER_S} if status == 503 else None
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
