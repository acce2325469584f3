"""The request id travels from the caller's context through gRPC metadata into the server's context,
its worker thread and its JSON log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from services.core import request_id
from services.core.grpc_server import ErrorInterceptor, GrpcService
from services.core.logging import setup_logging
from services.core.redis_server import free_port
from services.pipeline.clients import RequestIdInterceptor

METHOD = "/test.Echo/RequestId"


class _Threaded(GrpcService):
    name = "echo"
    full_name = "test.Echo"

    def register(self, server: grpc.aio.Server) -> None: ...
    async def load(self) -> None: ...
    async def probe(self) -> None: ...


@pytest.fixture
async def target() -> AsyncIterator[str]:
    service = _Threaded()

    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        # Seen in the handler and in the model thread the services run their work on.
        in_thread = await service.run_blocking(request_id.current)
        return f"{request_id.current()}|{in_thread}".encode()

    server = grpc.aio.server(interceptors=[ErrorInterceptor("echo")])
    handler = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("test.Echo", {"RequestId": handler})]
    )
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)
    await service.close()


async def _call(target: str) -> str:
    async with grpc.aio.insecure_channel(target, interceptors=[RequestIdInterceptor()]) as channel:
        reply: bytes = await channel.unary_unary(METHOD)(b"", timeout=5)
    return reply.decode()


async def test_the_callers_request_id_reaches_the_server_and_its_worker_thread(target: str) -> None:
    token = request_id.bind("req-7f3a")
    try:
        assert await _call(target) == "req-7f3a|req-7f3a"
    finally:
        request_id.reset(token)


async def test_a_call_without_a_request_id_gets_a_fresh_one(target: str) -> None:
    handler_id, thread_id = (await _call(target)).split("|")
    assert len(handler_id) == 32 and handler_id == thread_id


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "with space", "new\nline", "trailing-newline\n"])
def test_unsafe_ids_are_replaced(offered: str | None) -> None:
    made = request_id.accept(offered)
    assert made != offered and len(made) == 32


def test_json_logs_carry_role_level_and_request_id() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("judge", "INFO", "json")
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        token = request_id.bind("abc-123")
        logging.getLogger("services.judge").info("judged %d pairs", 3)
        request_id.reset(token)
        logging.getLogger("services.judge").warning("no request")
    finally:
        root.handlers, root.level = saved[0], saved[1]
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first == first | {
        "role": "judge",
        "level": "INFO",
        "message": "judged 3 pairs",
        "request_id": "abc-123",
    }
    assert "request_id" not in second and second["level"] == "WARNING"
