"""Search micro-batching wiring: concurrent calls share encoder calls, answers match lone calls, a text
that encodes to NaN fails only its own call with INVALID_ARGUMENT. A hash-based stand-in encoder and a
numpy index keep this fast; the real MiniLM + FAISS path is in tests/integration."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from prometheus_client import REGISTRY

from services.core.catalog import Product
from services.core.encoder import Encoder
from services.core.encoder_backend import EncoderBackend
from services.core.grpc_server import ErrorInterceptor
from services.gen.synth.v1 import retriever_pb2, retriever_pb2_grpc
from services.retriever.batching import SearchItem, search_many
from services.retriever.config import RetrieverSettings
from services.retriever.served import Served
from services.retriever.servicer import RetrieverService

POISON = "text that encodes to nan"


class HashBackend(EncoderBackend):
    """Deterministic unit vectors from a text's hash; NaN for POISON. Records every call."""

    name = "hash"
    dim = 16

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @classmethod
    def load(cls, path: Path, device: str, batch_size: int, cache_dir: Path | None) -> HashBackend:
        return cls()

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            rows.append(
                np.full(self.dim, np.nan, np.float32) if text == POISON else row / np.linalg.norm(row)
            )
        return np.stack(rows)


class NumpyIndex:
    """Exact inner-product search over random product vectors."""

    version = "test-index"

    def __init__(self, count: int = 40, dim: int = 16) -> None:
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.products = [Product(id=f"P{i}", title=f"product {i}") for i in range(count)]
        self.queries = 0

    def search(self, vectors: np.ndarray, top_k: int) -> list[list[tuple[Product, float]]]:
        self.queries += 1
        scores = vectors @ self.vectors.T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
        return [[(self.products[j], float(scores[i, j])) for j in row] for i, row in enumerate(order)]


def ids(hits: list[list[tuple[Product, float]]]) -> list[list[str]]:
    return [[product.id for product, _ in row] for row in hits]


def test_search_many_answers_each_call_as_if_it_ran_alone() -> None:
    backend, index = HashBackend(), NumpyIndex()
    encoder = Encoder.from_backend(backend, "hash:test")
    items = [SearchItem(["drill", "saw"], 3), SearchItem(["lamp"], 5), SearchItem(["sofa", "rug", "bed"], 3)]
    together = search_many(encoder, index, items)
    alone = [search_many(encoder, index, [item])[0] for item in items]
    assert [ids(hits) for hits in together] == [ids(hits) for hits in alone]
    assert [len(row) for hits in together for row in hits] == [3, 3, 5, 3, 3, 3]
    assert backend.calls[0] == ["drill", "saw", "lamp", "sofa", "rug", "bed"]  # one encoder call
    assert index.queries == 2 + 3  # one search per distinct top_k, then one per lone call


@pytest.fixture
async def served() -> AsyncIterator[tuple[retriever_pb2_grpc.RetrieverStub, RetrieverService, HashBackend]]:
    settings = RetrieverSettings(batch_max_texts=64, batch_wait_ms=50)
    service = RetrieverService(settings)
    backend = HashBackend()
    service.served = Served(Encoder.from_backend(backend, "hash:test"), NumpyIndex(), None)  # type: ignore[arg-type]
    service.loaded = True
    server = grpc.aio.server(interceptors=[ErrorInterceptor(service.name)])
    service.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield retriever_pb2_grpc.RetrieverStub(channel), service, backend
    await server.stop(None)
    await service.close()


def batch_count() -> float:
    return REGISTRY.get_sample_value("tailsynth_retriever_search_batch_requests_count") or 0.0


async def test_concurrent_search_calls_are_batched_and_match_lone_calls(served: tuple) -> None:
    stub, _, backend = served
    requests = [
        retriever_pb2.SearchRequest(texts=[f"query {i}", f"other {i}"], top_k=1 + i % 3) for i in range(8)
    ]
    lone = [await stub.Search(r, timeout=10) for r in requests]
    calls_before, batches_before = len(backend.calls), batch_count()
    together = await asyncio.gather(*(stub.Search(r, timeout=10) for r in requests))
    for a, b in zip(lone, together, strict=True):
        assert [[h.product.id for h in row.hits] for row in a.results] == [
            [h.product.id for h in row.hits] for row in b.results
        ]
        assert [h.score for row in a.results for h in row.hits] == pytest.approx(
            [h.score for row in b.results for h in row.hits], abs=1e-6
        )
    # 8 calls, fewer encoder calls: they were batched (and the metric saw each batch)
    encoder_calls = len(backend.calls) - calls_before
    assert encoder_calls < len(requests)
    assert batch_count() - batches_before == encoder_calls


async def test_a_text_that_encodes_to_nan_fails_only_its_own_call(served: tuple) -> None:
    stub, _, _ = served
    requests = [
        retriever_pb2.SearchRequest(texts=["drill"], top_k=2),
        retriever_pb2.SearchRequest(texts=["fine", POISON], top_k=2),
        retriever_pb2.SearchRequest(texts=["lamp"], top_k=2),
    ]
    replies = await asyncio.gather(*(stub.Search(r, timeout=10) for r in requests), return_exceptions=True)
    assert isinstance(replies[1], grpc.aio.AioRpcError)
    assert replies[1].code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "text #1 could not be encoded" in (replies[1].details() or "")
    for reply in (replies[0], replies[2]):
        assert isinstance(reply, retriever_pb2.SearchResponse) and len(reply.results[0].hits) == 2
    # and the server goes on serving
    assert (await stub.Search(retriever_pb2.SearchRequest(texts=["x"], top_k=1), timeout=10)).results


async def test_too_many_texts_in_one_call_are_refused_before_any_work(served: tuple) -> None:
    stub, service, backend = served
    calls = len(backend.calls)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Search(retriever_pb2.SearchRequest(texts=["drill"] * 10_000, top_k=1), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"the limit is {service.settings.max_texts}" in (error.value.details() or "")
    assert len(backend.calls) == calls


async def test_batching_off_encodes_every_call_alone() -> None:
    service = RetrieverService(RetrieverSettings(batch_max_texts=0))
    backend = HashBackend()
    service.served = Served(Encoder.from_backend(backend, "hash:test"), NumpyIndex(), None)  # type: ignore[arg-type]
    results = await asyncio.gather(*(service._search([f"q{i}"], 2) for i in range(4)))
    assert [len(hits[0]) for _, hits in results] == [2, 2, 2, 2]
    assert {version for version, _ in results} == {"test-index"}  # each answer names its index
    assert sorted(backend.calls) == [["q0"], ["q1"], ["q2"], ["q3"]]
    await service.close()
