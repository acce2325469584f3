"""Health follows real work: a busy service that keeps answering stays SERVING even when a probe would
wait too long behind its requests; a service whose work fails goes NOT_SERVING."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from services.core.grpc_server import GrpcService, _watch_health

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _Service(GrpcService):
    name = "probe-test"
    full_name = "test.Probe"

    def __init__(self, work_fails: bool) -> None:
        self.work_fails = work_fails

    def register(self, server: grpc.aio.Server) -> None: ...
    async def load(self) -> None: ...

    def _work(self) -> str:
        if self.work_fails:
            raise RuntimeError("model is broken")
        return "ok"

    async def probe(self) -> None:
        raise TimeoutError  # as a probe stuck behind queued requests


async def _status(service: _Service, requests: int) -> int:
    health = HealthServicer()
    watcher = asyncio.create_task(_watch_health(health, service, 0.05))
    for _ in range(requests):
        try:
            await service.run_blocking(service._work)
        except RuntimeError:
            pass
        await asyncio.sleep(0.02)
    watcher.cancel()
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), None)
    await service.close()
    return int(reply.status)


async def test_a_busy_service_whose_requests_succeed_stays_serving() -> None:
    assert await _status(_Service(work_fails=False), requests=15) == SERVING


async def test_a_service_whose_work_fails_goes_not_serving() -> None:
    assert await _status(_Service(work_fails=True), requests=15) == NOT_SERVING
