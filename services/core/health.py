"""Asking gRPC servers for their standard health (grpc.health.v1), and waiting until they say SERVING.

For whoever has just started the servers and must wait for their models to load: `synth up`, the tests
and the benchmarks. (The gateway's readiness asks through the pipeline's clients, which hold the channels.)
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class NotServing(RuntimeError):
    """A server did not say SERVING in time, or its process exited first."""


def health_status(channel: grpc.Channel, service: str = "", timeout_s: float = 1.0) -> int | None:
    """The server's status (a HealthCheckResponse value) for the service ("" = the whole server), or None
    when it does not answer."""
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout_s)
    except grpc.RpcError:
        return None
    return int(reply.status)


def is_serving(target: str, timeout_s: float = 2.0) -> bool:
    """One question to the server at host:port."""
    with grpc.insecure_channel(target) as channel:
        return health_status(channel, timeout_s=timeout_s) == SERVING


def exited(process: subprocess.Popen[bytes], what: str) -> NotServing | None:
    """NotServing with the end of the process's output when it has exited (output read from a pipe)."""
    if process.poll() is None:
        return None
    message = f"{what} exited with code {process.returncode} before SERVING"
    if process.stdout is not None:
        message += "\n" + process.stdout.read().decode(errors="replace")[-4000:]
    return NotServing(message)


def wait_serving(
    targets: str | Sequence[str],
    timeout_s: float,
    *,
    process: subprocess.Popen[bytes] | None = None,
    check: Callable[[], None] | None = None,
    interval_s: float = 0.2,
    what: str | None = None,
) -> float:
    """Poll every server (host:port) until each says SERVING; return the time.monotonic() when they did.

    Every round first gives up if `process` has exited (NotServing with its output) or `check()` raises,
    so a server that crashed while loading fails at once rather than at the deadline.
    """
    addresses = [targets] if isinstance(targets, str) else list(targets)
    what = what or ", ".join(addresses)
    channels = [grpc.insecure_channel(address) for address in addresses]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if process is not None and (error := exited(process, what)) is not None:
                raise error
            if check is not None:
                check()
            if all(health_status(channel) == SERVING for channel in channels):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise NotServing(f"{what} not SERVING after {timeout_s:.0f}s")
            time.sleep(interval_s)
    finally:
        for channel in channels:
            channel.close()
