"""ASGI middleware: request ids, per-route metrics and the limits on request bodies.

Plain ASGI rather than BaseHTTPMiddleware, so streamed responses pass through untouched and the
request id's context reaches the endpoint and everything it awaits.
"""

from __future__ import annotations

import asyncio
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.core import request_id
from services.gateway.metrics import REQUEST_SECONDS, REQUESTS


class RequestContext:
    """Binds a request id (the caller's X-Request-ID if sane, else a new one), echoes it, and counts the
    request by route template and status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = dict(scope["headers"]).get(request_id.HEADER.encode())
        rid = request_id.accept(offered.decode("latin-1") if offered else None)
        token = request_id.bind(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (request_id.HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(route, f"{status // 100}xx").inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
            request_id.reset(token)


BODY_METHODS = {"POST", "PUT", "PATCH"}


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class BodyLimits:
    """Request bodies are JSON (else 415), at most max_bytes (else 413, whether or not Content-Length is
    sent) and complete within timeout_s (else 408 and the connection is closed).

    The body is read here, before routing, and handed on whole: FastAPI answers 400 to any error raised
    while it reads a body, so a limit enforced inside its reads could not answer with its own status.
    Bodies are small JSON documents, so holding one in memory costs nothing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        if not chunked and (length is None or int(length) == 0):
            await self.app(scope, receive, send)  # no body: FastAPI says what is missing
            return
        content_type = headers.get(b"content-type")
        if content_type is None or not is_json(content_type):
            got = content_type.decode("latin-1")[:100] if content_type else "none"
            await _refuse(
                send, 415, f"the request body must be JSON: send Content-Type: application/json (got {got})"
            )
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            await _refuse(send, 408, f"the request body did not arrive within {self.timeout_s:g}s")
            return
        except _TooLarge:
            await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
            return
        except _Disconnected:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # what comes next: the client's disconnect
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _refuse(send: Send, status: int, detail: str) -> None:
    # The body was not read (or not all of it): close the connection rather than let the server wait
    # for, or drain, a body that may never end.
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})
    await response({"type": "http"}, _no_receive, send)


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
