"""Search micro-batching: concurrent Search calls share one encoder call and one FAISS search per top_k.

Metrics (Prometheus):
- tailsynth_retriever_search_batch_requests: Search calls answered by one batch.
- tailsynth_retriever_search_batch_texts: texts encoded together in one batch.
- tailsynth_retriever_search_batch_wait_seconds: how long the oldest call of a batch waited for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from prometheus_client import Histogram

from services.core.batcher import Batcher, BatchStats
from services.core.catalog import Product
from services.core.encoder import Encoder

Hits = list[list[tuple[Product, float]]]  # per text: (product, score), best first
Answer = tuple[str, Hits]  # the version of the index that answered, and its hits

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
BATCH_REQUESTS = Histogram(
    "tailsynth_retriever_search_batch_requests",
    "Search calls answered by one encoder/FAISS batch.",
    buckets=SIZE_BUCKETS,
)
BATCH_TEXTS = Histogram(
    "tailsynth_retriever_search_batch_texts",
    "Texts encoded together in one batch.",
    buckets=SIZE_BUCKETS,
)
BATCH_WAIT = Histogram(
    "tailsynth_retriever_search_batch_wait_seconds",
    "Time the oldest Search call of a batch waited before the batch ran.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


@dataclass(frozen=True)
class SearchItem:
    """One Search call: its cleaned texts and top_k."""

    texts: list[str]
    top_k: int


class Searchable(Protocol):
    def search(self, vectors: np.ndarray, top_k: int) -> Hits: ...


def search_many(encoder: Encoder, index: Searchable, items: list[SearchItem]) -> list[Hits]:
    """Encode every call's texts at once, search once per distinct top_k, split the hits per call.

    Calls are grouped by top_k rather than searched at the largest one: for approximate indexes the
    search parameters follow k, and a call's hits must not depend on which calls it was batched with.
    """
    vectors = encoder.encode([text for item in items for text in item.texts])
    starts = np.cumsum([0] + [len(item.texts) for item in items])
    by_k: dict[int, list[int]] = {}
    for position, item in enumerate(items):
        by_k.setdefault(item.top_k, []).append(position)
    results: list[Hits] = [[] for _ in items]
    for top_k, positions in by_k.items():
        rows = np.concatenate([np.arange(starts[p], starts[p + 1]) for p in positions])
        hits = index.search(vectors[rows], top_k)
        offset = 0
        for p in positions:
            count = len(items[p].texts)
            results[p] = hits[offset : offset + count]
            offset += count
    return results


def observe(stats: BatchStats) -> None:
    BATCH_REQUESTS.observe(stats.items)
    BATCH_TEXTS.observe(stats.weight)
    BATCH_WAIT.observe(stats.oldest_wait_s)


def search_batcher(
    search: Callable[[list[SearchItem]], list[Answer]],
    run: Callable[..., Awaitable[Any]],
    max_texts: int,
    wait_ms: float,
) -> Batcher[SearchItem, Answer]:
    return Batcher(
        search,
        run,
        max_weight=max_texts,
        max_wait_s=wait_ms / 1000,
        weight=lambda item: len(item.texts),
        on_batch=observe,
    )
