"""The gateway's HTTP edge on a real socket: connections whose request never finishes are cut.

`python -m services.gateway` runs as a real process (uvicorn) with a real Redis and a 1 s read timeout;
its gRPC backends are absent, which nothing here needs.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from services.core.redis_server import EmbeddedRedis, free_port

READ_TIMEOUT_S = 1.0
SLACK_S = 4.0  # two busy cores
CONNECTIONS = 16


@pytest.fixture(scope="module")
def gateway(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    nowhere = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(tmp_path_factory.mktemp("state")),
        "TAILSYNTH_REDIS_URL": redis_server.url,
        "TAILSYNTH_GATEWAY_PORT": str(port),
        "TAILSYNTH_GATEWAY_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        **{f"TAILSYNTH_PIPELINE_{name}_TARGET": nowhere for name in ("REWRITER", "RETRIEVER", "JUDGE")},
    }
    process = subprocess.Popen([sys.executable, "-m", "services.gateway"], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(30)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S + SLACK_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (raises on timeout)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_bodies_that_never_finish_get_408_and_their_connections_are_closed(gateway: int) -> None:
    head = (
        b"POST /v1/synthesize HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    sockets = [connect(gateway) for _ in range(CONNECTIONS)]
    started = time.monotonic()
    for sock in sockets:
        sock.sendall(head + b'{"query": "cordless')  # 19 of the 100 bytes announced, then silence
    replies = [read_until_closed(sock) for sock in sockets]
    elapsed = time.monotonic() - started
    for sock in sockets:
        sock.close()
    assert all(reply.startswith(b"HTTP/1.1 408 ") for reply in replies), replies[0][:200]
    assert b"did not arrive within" in replies[0]
    assert READ_TIMEOUT_S * 0.9 <= elapsed < READ_TIMEOUT_S + SLACK_S, elapsed


def test_connections_without_complete_headers_are_closed(gateway: int) -> None:
    silent = [connect(gateway) for _ in range(CONNECTIONS // 2)]
    partial = [connect(gateway) for _ in range(CONNECTIONS // 2)]
    started = time.monotonic()
    for sock in partial:
        sock.sendall(b"POST /v1/synthesize HTTP/1.1\r\nHost: gate")
    replies = [read_until_closed(sock) for sock in silent + partial]
    elapsed = time.monotonic() - started
    assert replies == [b""] * CONNECTIONS  # closed, nothing sent: there was no request to answer
    assert elapsed < READ_TIMEOUT_S + SLACK_S, elapsed
    for sock in silent + partial:
        sock.close()


def test_headers_sent_a_byte_at_a_time_do_not_hold_the_connection(gateway: int) -> None:
    sock = connect(gateway)
    started = time.monotonic()
    closed_after = None
    for byte in b"POST /v1/synthesize HTTP/1.1\r\nHost: gateway\r\nX-Padding: " + b"a" * 200:
        try:
            sock.send(bytes([byte]))
        except OSError:  # reset: the server closed it
            closed_after = time.monotonic() - started
            break
        readable, _, _ = select.select([sock], [], [], 0.1)
        if readable and sock.recv(1024) == b"":
            closed_after = time.monotonic() - started
            break
    sock.close()
    assert closed_after is not None, "the connection was still open after every header byte was dripped"
    assert closed_after < READ_TIMEOUT_S + SLACK_S, closed_after


def test_a_complete_request_on_the_same_server_is_still_answered(gateway: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{gateway}", timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(READ_TIMEOUT_S * 1.5)  # an idle keep-alive connection may be closed; a new one opens
        response = client.post("/v1/synthesize", json={"query": ""})
        assert response.status_code == 422
