"""Typed gRPC clients for the three services, each call with a deadline.

Failures become BackendError carrying the service and status, so callers can answer 503/504
instead of a stack trace.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.core import request_id
from services.core.text import product_text
from services.gen.synth.v1 import (
    common_pb2,
    judge_pb2,
    judge_pb2_grpc,
    retriever_pb2,
    retriever_pb2_grpc,
    rewriter_pb2,
    rewriter_pb2_grpc,
)

T = TypeVar("T")
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # A restarted service is found again within ~2 s (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class RequestIdInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    """Sends the current request id as gRPC metadata, so the services log under the same id."""

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        current = request_id.current()
        if current:
            metadata = list(client_call_details.metadata or ()) + [(request_id.HEADER, current)]
            client_call_details = client_call_details._replace(metadata=metadata)
        return await continuation(client_call_details, request)


class BackendError(RuntimeError):
    def __init__(self, service: str, code: grpc.StatusCode, detail: str) -> None:
        super().__init__(f"{service}: {code.name}: {detail}")
        self.service = service
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Hit:
    product_id: str
    title: str
    text: str  # what the judge reads
    score: float


class _Client:
    service = ""

    def __init__(self, target: str, timeout_s: float) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.channel = grpc.aio.insecure_channel(
            target, options=CHANNEL_OPTIONS, interceptors=[RequestIdInterceptor()]
        )
        self._health = health_pb2_grpc.HealthStub(self.channel)
        self.stub: Any = None  # set by each subclass

    async def _call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            raise BackendError(self.service, error.code(), error.details() or "") from None

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def describe(self) -> common_pb2.ServiceInfo:
        return await self._call(self.stub.Describe(common_pb2.DescribeRequest(), timeout=self.timeout_s))

    async def close(self) -> None:
        await self.channel.close()


class RewriterClient(_Client):
    service = "rewriter"

    def __init__(self, target: str, timeout_s: float) -> None:
        super().__init__(target, timeout_s)
        self.stub = rewriter_pb2_grpc.RewriterStub(self.channel)

    async def rewrite(
        self, query: str, n: int, feedback: list[str] | None = None
    ) -> rewriter_pb2.RewriteResponse:
        request = rewriter_pb2.RewriteRequest(query=query, num_rewrites=n, feedback=feedback or [])
        return await self._call(self.stub.Rewrite(request, timeout=self.timeout_s))


class RetrieverClient(_Client):
    service = "retriever"

    def __init__(self, target: str, timeout_s: float) -> None:
        super().__init__(target, timeout_s)
        self.stub = retriever_pb2_grpc.RetrieverStub(self.channel)

    async def search(self, texts: list[str], top_k: int) -> list[list[Hit]]:
        request = retriever_pb2.SearchRequest(texts=texts, top_k=top_k)
        reply = await self._call(self.stub.Search(request, timeout=self.timeout_s))
        return [[_hit(h) for h in hits.hits] for hits in reply.results]


def _hit(hit: retriever_pb2.Hit) -> Hit:
    p = hit.product
    return Hit(
        product_id=p.id, title=p.title, text=product_text(p.title, p.brand, p.category), score=hit.score
    )


class JudgeClient(_Client):
    service = "judge"

    def __init__(self, target: str, timeout_s: float) -> None:
        super().__init__(target, timeout_s)
        self.stub = judge_pb2_grpc.JudgeStub(self.channel)

    async def judge(self, query: str, texts: list[str], kind: int) -> list[judge_pb2.Judgment]:
        if not texts:
            return []
        pairs = [judge_pb2.JudgePair(query=query, text=t, kind=kind) for t in texts]  # type: ignore[arg-type]
        reply = await self._call(self.stub.Judge(judge_pb2.JudgeRequest(pairs=pairs), timeout=self.timeout_s))
        return list(reply.judgments)
