"""One grpc.aio bootstrap for every service.

Standard grpc.health.v1 (NOT_SERVING until the model/index is loaded, then kept truthful by a
periodic probe that runs real work), reflection, an interceptor that turns exceptions into status
codes, refuses requests that do not decode and enforces deadlines, and graceful stop: SIGTERM ->
NOT_SERVING -> stop(grace) -> close().
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.core import request_id
from services.core.errors import ConfigError, InvalidInput, NotReady
from services.core.logging import setup_logging
from services.core.metrics import GRPC_LATENCY, GRPC_REQUESTS, start_metrics_server
from services.core.settings import GrpcServiceSettings, load_settings
from services.core.signals import stop_on_signals

log = logging.getLogger(__name__)
GrpcServiceSettingsT = TypeVar("GrpcServiceSettingsT", bound=GrpcServiceSettings)
R = TypeVar("R")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]


class GrpcService(ABC):
    """What a service plugs into the bootstrap."""

    name: str  # short name: "rewriter"
    full_name: str  # proto service name: "synth.v1.Rewriter"
    loaded = False
    _executor: ThreadPoolExecutor | None = None
    _last_work_ok = float("-inf")  # monotonic time model work last finished without an error

    async def run_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        """Run model work on the service's one worker thread: one call at a time, in arrival order."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        # The copied context carries the request id into the worker thread's log lines.
        work = functools.partial(contextvars.copy_context().run, fn, *args)
        result = await asyncio.get_running_loop().run_in_executor(self._executor, work)
        self.mark_worked()
        return result

    def mark_worked(self) -> None:
        """Real work just succeeded (engines that do not run on the worker thread report it here)."""
        self._last_work_ok = time.monotonic()

    def worked_within(self, seconds: float) -> bool:
        return time.monotonic() - self._last_work_ok <= seconds

    def require_loaded(self) -> None:
        if not self.loaded:
            raise NotReady(f"{self.name} is still loading its model")

    @abstractmethod
    def register(self, server: grpc.aio.Server) -> None: ...

    @abstractmethod
    async def load(self) -> None:
        """Load models/indexes; health turns SERVING when this returns."""

    @abstractmethod
    async def probe(self) -> None:
        """Run a tiny piece of real work; raise if the service cannot serve."""

    async def close(self) -> None:
        """Release the worker thread after the server has drained."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Undecodable:
    """A request its protobuf type could not parse (truncated bytes, invalid UTF-8 in a string field)."""

    error: str


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """The method's deserializer, returning Undecodable instead of raising.

    gRPC answers UNKNOWN, with the exception's class name as the message, when a deserializer raises;
    handing the failure to the interceptor lets it answer INVALID_ARGUMENT with a message instead.
    """
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return Undecodable(str(error))

    return decode


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Request decoding, deadline enforcement, metrics and exception -> status mapping for unary RPCs."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            offered = dict(context.invocation_metadata() or ()).get(request_id.HEADER)
            token = request_id.bind(request_id.accept(offered if isinstance(offered, str) else None))
            try:
                if isinstance(request, Undecodable):
                    raise InvalidInput(
                        f"cannot decode the request ({request.error}); string fields must be valid UTF-8"
                    )
                remaining = context.time_remaining()
                return await asyncio.wait_for(inner(request, context), timeout=remaining)
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except InvalidInput as error:
                code = grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, str(error))
            except NotReady as error:
                code = grpc.StatusCode.UNAVAILABLE
                await context.abort(code, str(error))
            except TimeoutError:
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                await context.abort(code, "deadline exceeded before the work finished")
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("%s/%s failed", self.service, method)
                await context.abort(code, f"internal error in {self.service}.{method}; see the server log")
            finally:
                request_id.reset(token)
                GRPC_REQUESTS.labels(self.service, method, code.name).inc()
                GRPC_LATENCY.labels(self.service, method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            guarded,
            request_deserializer=tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


async def _set_health(health: HealthServicer, service: GrpcService, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", service.full_name):
        await health.set(name, status)


async def _probe(service: GrpcService, interval_s: float) -> bool:
    try:
        await asyncio.wait_for(service.probe(), timeout=max(interval_s, 5.0))
    except Exception as error:  # any failure of real work means we must not claim SERVING
        log.error("health probe failed: %r", error)
        return False
    return True


async def _watch_health(health: HealthServicer, service: GrpcService, interval_s: float) -> None:
    serving = True
    while True:
        await asyncio.sleep(interval_s)
        if service.worked_within(interval_s):
            # Real requests just succeeded: that is the proof. A probe would only queue behind them on the
            # model thread and, under load, time out on a healthy service.
            healthy = True
        else:
            healthy = await _probe(service, interval_s)
        if healthy != serving:
            serving = healthy
            await _set_health(health, service, serving)
            log.warning("health is now %s", "SERVING" if serving else "NOT_SERVING")


async def serve(service: GrpcService, settings: GrpcServiceSettings) -> int:
    """Run the service until SIGTERM/SIGINT; return the process exit code."""
    server = grpc.aio.server(interceptors=[ErrorInterceptor(service.name)], options=SERVER_OPTIONS)
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    service.register(server)
    reflection.enable_server_reflection(
        [
            service.full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    if server.add_insecure_port(settings.bind) == 0:
        log.error("cannot listen on %s (address in use?)", settings.bind)
        return 1
    await _set_health(health, service, serving=False)
    await server.start()
    start_metrics_server(settings.metrics_port)
    log.info("%s listening on %s (NOT_SERVING until loaded)", service.name, settings.bind)

    stop = stop_on_signals()
    exit_code = 0
    watcher: asyncio.Task[None] | None = None
    loading = asyncio.create_task(service.load())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loading.done() and loading.exception() is not None:
        log.error("%s failed to load: %s", service.name, loading.exception())
        exit_code = 1
    elif loading.done():
        await _set_health(health, service, serving=True)
        log.info("%s is SERVING", service.name)
        watcher = asyncio.create_task(_watch_health(health, service, settings.health_interval_s))
        await stopping
    else:
        loading.cancel()

    log.info("%s stopping: NOT_SERVING, draining for up to %.0fs", service.name, settings.grace_s)
    if watcher is not None:
        watcher.cancel()
    stopping.cancel()
    await health.enter_graceful_shutdown()
    await server.stop(settings.grace_s)
    await service.close()
    log.info("%s stopped", service.name)
    return exit_code


def run_service(
    role: str, settings_cls: type[GrpcServiceSettingsT], factory: Callable[[Any], GrpcService]
) -> int:
    """Entry point body of `python -m services.<role>`: settings, logging, engine, serve."""
    settings = load_settings(settings_cls)
    setup_logging(role, settings.log_level, settings.log_format)
    try:
        service = factory(settings)
    except ConfigError as error:
        log.error("%s", error)
        return 2
    return asyncio.run(serve(service, settings))
