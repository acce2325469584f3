"""Typed gRPC clients for the three services, each call with a deadline.

They speak protobuf to the services and domain values (services/pipeline/domain.py) to their callers.
Failures become BackendError carrying the service and status, so callers can answer 503/504
instead of a stack trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
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
from services.pipeline.domain import Hit, Judgment, PairKind, Product, RewriteCandidate, Rewritten
from services.pipeline.models import DroppedCandidate, EngineFailure

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
        self, query: str, n: int, feedback: list[str] | None = None, seed: int | None = None
    ) -> Rewritten:
        """With a seed, the LLM engines sample reproducibly (the same seed, the same draws)."""
        request = rewriter_pb2.RewriteRequest(query=query, num_rewrites=n, feedback=feedback or [])
        if seed is not None:
            request.seed = seed
        reply = await self._call(self.stub.Rewrite(request, timeout=self.timeout_s))
        return _rewritten(reply)

    async def write_queries(
        self, product: Product, prompt: str, n: int, seed: int | None = None
    ) -> Rewritten:
        """Shopper queries for a product, written with a product prompt; a copy of its title is dropped."""
        request = rewriter_pb2.RewriteRequest(
            num_rewrites=n,
            prompt=prompt,
            product=common_pb2.Product(
                id=product.id,
                title=product.title,
                brand=product.brand,
                category=product.category,
                description=product.description,
            ),
        )
        if seed is not None:
            request.seed = seed
        reply = await self._call(self.stub.Rewrite(request, timeout=self.timeout_s))
        return _rewritten(reply)


class RetrieverClient(_Client):
    service = "retriever"

    def __init__(self, target: str, timeout_s: float, shard: str = "0/1") -> None:
        super().__init__(target, timeout_s)
        self.stub = retriever_pb2_grpc.RetrieverStub(self.channel)
        self.shard = shard  # the part of the catalog this target must serve

    async def describe(self) -> common_pb2.ServiceInfo:
        """Describe, refusing a retriever that serves another part of the catalog than expected."""
        info = await super().describe()
        served = info.details.get("shard", "0/1")
        if served != self.shard:
            raise BackendError(
                self.service,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{self.target} serves shard {served} of the catalog, expected {self.shard}: "
                "TAILSYNTH_PIPELINE_RETRIEVER_TARGET lists one target per shard, shard i/N at position i",
            )
        return info

    async def search(self, texts: list[str], top_k: int) -> list[list[Hit]]:
        request = retriever_pb2.SearchRequest(texts=texts, top_k=top_k)
        reply = await self._call(self.stub.Search(request, timeout=self.timeout_s))
        return [[_hit(h) for h in hits.hits] for hits in reply.results]


class ShardedRetriever:
    """A catalog split over N retrievers, target i serving shard i/N: every search asks all of them.

    Same interface as RetrieverClient (search, healthy, describe, close), so the pipeline does not
    know how many shards there are.
    """

    service = "retriever"

    def __init__(self, targets: Sequence[str], timeout_s: float) -> None:
        self.shards = [
            RetrieverClient(target, timeout_s, f"{index}/{len(targets)}")
            for index, target in enumerate(targets)
        ]

    def _name(self, index: int) -> str:
        return f"shard {self.shards[index].shard} at {self.shards[index].target}"

    async def _each(self, call: Callable[[RetrieverClient], Awaitable[T]]) -> list[T]:
        """The call on every shard at once (same deadline); the first failure cancels the rest."""

        async def one(index: int) -> T:
            try:
                return await call(self.shards[index])
            except BackendError as error:
                raise BackendError(self.service, error.code, f"{self._name(index)}: {error.detail}") from None

        tasks = [asyncio.ensure_future(one(index)) for index in range(len(self.shards))]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def search(self, texts: list[str], top_k: int) -> list[list[Hit]]:
        # All shards or a failure, never a merge of the shards that answered: results from part of
        # the catalog look like a normal answer, and the rewards computed from them (the increment
        # of a rewrite over the query's own results above all) would be silently wrong.
        replies = await self._each(lambda shard: shard.search(texts, top_k))
        return [merge_hits([reply[i] for reply in replies], top_k) for i in range(len(texts))]

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        return all(await asyncio.gather(*(shard.healthy(timeout_s) for shard in self.shards)))

    async def describe(self) -> common_pb2.ServiceInfo:
        """One ServiceInfo for all shards, naming each shard's index."""
        infos = await self._each(lambda shard: shard.describe())
        return common_pb2.ServiceInfo(
            service=self.service,
            engine=",".join(sorted({info.engine for info in infos})),
            version=";".join(
                f"{shard.shard}={info.version}" for shard, info in zip(self.shards, infos, strict=True)
            ),
            details={
                "shards": str(len(infos)),
                "products": str(sum(int(info.details.get("products", "0")) for info in infos)),
            },
        )

    async def close(self) -> None:
        await asyncio.gather(*(shard.close() for shard in self.shards))


def merge_hits(lists: Sequence[Sequence[Hit]], top_k: int) -> list[Hit]:
    """Several hit lists for one text as one: best score per product, score descending (ties by
    product id, so the order does not depend on which shard answered first), at most top_k."""
    best: dict[str, Hit] = {}
    for hits in lists:
        for hit in hits:
            kept = best.get(hit.product_id)
            if kept is None or hit.score > kept.score:
                best[hit.product_id] = hit
    return sorted(best.values(), key=lambda hit: (-hit.score, hit.product_id))[:top_k]


Retriever = RetrieverClient | ShardedRetriever


def retriever_client(targets: Sequence[str], timeout_s: float) -> Retriever:
    """A plain client for one target (the whole catalog), a fan-out over shards for several."""
    if len(targets) == 1:
        return RetrieverClient(targets[0], timeout_s)
    return ShardedRetriever(targets, timeout_s)


def _hit(hit: retriever_pb2.Hit) -> Hit:
    p = hit.product
    return Hit(
        product_id=p.id, title=p.title, text=product_text(p.title, p.brand, p.category), score=hit.score
    )


def _rewritten(reply: rewriter_pb2.RewriteResponse) -> Rewritten:
    return Rewritten(
        candidates=[RewriteCandidate(text=c.text, source=c.source) for c in reply.candidates],
        dropped=[DroppedCandidate(text=d.text, reason=d.reason) for d in reply.dropped],
        failures=[EngineFailure(engine=f.engine, error=f.error) for f in reply.failures],
        generated_tokens=reply.generated_tokens,
    )


PAIR_KINDS = {
    PairKind.QUERY_PRODUCT: judge_pb2.PAIR_KIND_QUERY_PRODUCT,
    PairKind.QUERY_REWRITE: judge_pb2.PAIR_KIND_QUERY_REWRITE,
}
LABELS = {
    judge_pb2.RELEVANCE_LABEL_EXACT: "exact",
    judge_pb2.RELEVANCE_LABEL_PARTIAL: "partial",
    judge_pb2.RELEVANCE_LABEL_IRRELEVANT: "irrelevant",
}


def _judgment(judgment: judge_pb2.Judgment) -> Judgment:
    return Judgment(
        score=judgment.score,
        label=LABELS.get(judgment.label, "irrelevant"),
        accepted=judgment.accepted,
        reason=judgment.reason,
        engine_scores={e.engine: round(e.score, 4) for e in judgment.engine_scores},
    )


class JudgeClient(_Client):
    service = "judge"

    def __init__(self, target: str, timeout_s: float) -> None:
        super().__init__(target, timeout_s)
        self.stub = judge_pb2_grpc.JudgeStub(self.channel)

    async def judge(self, query: str, texts: list[str], kind: PairKind) -> list[Judgment]:
        if not texts:
            return []
        pairs = [judge_pb2.JudgePair(query=query, text=t, kind=PAIR_KINDS[kind]) for t in texts]
        reply = await self._call(self.stub.Judge(judge_pb2.JudgeRequest(pairs=pairs), timeout=self.timeout_s))
        return [_judgment(j) for j in reply.judgments]

    async def judge_pairs(self, pairs: Sequence[tuple[str, str]], kind: PairKind) -> list[Judgment]:
        """(query, text) pairs of different queries, judged in one call."""
        if not pairs:
            return []
        request = judge_pb2.JudgeRequest(
            pairs=[judge_pb2.JudgePair(query=q, text=t, kind=PAIR_KINDS[kind]) for q, t in pairs]
        )
        reply = await self._call(self.stub.Judge(request, timeout=self.timeout_s))
        return [_judgment(j) for j in reply.judgments]
