"""wait_serving() waits for a real server's grpc.health.v1 to say SERVING, and gives up for the right reason."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.core.health import NOT_SERVING, SERVING, NotServing, health_status, is_serving, wait_serving
from services.core.redis_server import free_port


@pytest.fixture
def server() -> Iterator[tuple[str, health.HealthServicer]]:
    port = free_port()
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    grpc_server = grpc.server(ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, grpc_server)
    grpc_server.add_insecure_port(f"127.0.0.1:{port}")
    grpc_server.start()
    yield f"127.0.0.1:{port}", servicer
    grpc_server.stop(0)


def test_waits_until_the_server_says_serving(server: tuple[str, health.HealthServicer]) -> None:
    address, servicer = server
    assert not is_serving(address)
    with grpc.insecure_channel(address) as channel:
        assert health_status(channel) == NOT_SERVING
    threading.Timer(0.5, servicer.set, ("", SERVING)).start()
    wait_serving([address], 10, interval_s=0.05)
    assert is_serving(address)


def test_a_server_that_never_serves_times_out(server: tuple[str, health.HealthServicer]) -> None:
    address, _ = server
    with pytest.raises(NotServing, match="^judge not SERVING after 1s$"):
        wait_serving(address, 1, interval_s=0.05, what="judge")


def test_nobody_listening_is_no_answer_not_an_error() -> None:
    with grpc.insecure_channel(f"127.0.0.1:{free_port()}") as channel:
        assert health_status(channel, timeout_s=0.5) is None


def test_a_process_that_exits_fails_at_once_with_its_output() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "print('cannot load the model'); raise SystemExit(3)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    process.wait(30)
    with pytest.raises(NotServing, match="rewriter exited with code 3 before SERVING\ncannot load the model"):
        wait_serving(f"127.0.0.1:{free_port()}", 300, process=process, what="rewriter")


def test_check_gives_up_with_the_callers_error() -> None:
    def dead() -> None:
        raise RuntimeError("the judge exited")

    with pytest.raises(RuntimeError, match="the judge exited"):
        wait_serving(f"127.0.0.1:{free_port()}", 300, check=dead)
