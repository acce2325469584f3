"""Retriever gRPC servicer: proto <-> domain only."""

from __future__ import annotations

import asyncio

import grpc

from services.core.catalog import Product
from services.core.errors import InvalidInput, NotReady
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean
from services.gen.synth.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc
from services.retriever.batching import Answer, SearchItem, search_batcher, search_many
from services.retriever.config import RetrieverSettings
from services.retriever.reload import IndexWatcher, record_served
from services.retriever.served import Served, open_served

MAX_TEXT_CHARS = 2000


def product_message(product: Product) -> common_pb2.Product:
    return common_pb2.Product(
        id=product.id,
        title=product.title,
        description=product.description,
        category=product.category,
        brand=product.brand,
    )


class RetrieverService(GrpcService, retriever_pb2_grpc.RetrieverServicer):
    name = "retriever"
    full_name = "synth.v1.Retriever"
    watcher: IndexWatcher[Served] | None = None
    _watching: asyncio.Task[None] | None = None

    def __init__(self, settings: RetrieverSettings) -> None:
        self.settings = settings
        # The encoder and the index built with it, swapped together by one reference assignment.
        self.served: Served | None = None
        self.batcher = search_batcher(
            self._search_sync, self.run_blocking, settings.batch_max_texts, settings.batch_wait_ms
        )

    def register(self, server: grpc.aio.Server) -> None:
        retriever_pb2_grpc.add_RetrieverServicer_to_server(self, server)

    def _load(self) -> None:
        self.served = open_served(self.settings)

    async def load(self) -> None:
        await self.run_blocking(self._load)
        self.loaded = True
        assert self.served is not None
        record_served(self.served)
        if self.settings.reload_interval_s > 0:
            self.watcher = IndexWatcher(
                self.settings.resolved_index_dir,
                self.settings.reload_interval_s,
                served=self._current,
                open_index=self._open_next,
                swap=self._serve,
            )
            self._watching = asyncio.create_task(self.watcher.run())

    def _current(self) -> Served:
        assert self.served is not None
        return self.served

    def _open_next(self) -> Served:
        """The CURRENT version with its encoder (reload thread): the served encoder when the model is the same."""
        return open_served(self.settings, self.served)

    def _serve(self, served: Served) -> None:
        # One reference assignment: a search that already took the old pair finishes on it.
        self.served = served

    async def probe(self) -> None:
        await self._search(["health probe"], 1)

    def _validate(self, texts: list[str], top_k: int) -> list[str]:
        if not texts:
            raise InvalidInput("texts is empty")
        if len(texts) > self.settings.max_texts:
            raise InvalidInput(f"{len(texts)} texts in one call; the limit is {self.settings.max_texts}")
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}")
        cleaned = [clean(t) for t in texts]
        for i, text in enumerate(cleaned):
            if not text:
                raise InvalidInput(f"texts[{i}] is empty")
            if len(text) > MAX_TEXT_CHARS:
                raise InvalidInput(f"texts[{i}] is longer than {MAX_TEXT_CHARS} characters")
        return cleaned

    def _search_sync(self, items: list[SearchItem]) -> list[Answer]:
        """One batch of Search calls (worker thread): encoded together, searched once per top_k."""
        served = self.served  # read once: a reload may swap the pair while this batch runs
        if served is None:
            raise NotReady("retriever is still loading its index")
        return [(served.version, hits) for hits in search_many(served.encoder, served.index, items)]

    async def _search(self, texts: list[str], top_k: int) -> Answer:
        return await self.batcher.submit(SearchItem(texts, top_k))

    async def close(self) -> None:
        if self._watching is not None:
            self._watching.cancel()  # no index swaps while the server drains
        await self.batcher.close()
        await super().close()

    async def Search(
        self, request: retriever_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> retriever_pb2.SearchResponse:
        texts = self._validate(list(request.texts), request.top_k)
        index_version, results = await self._search(texts, request.top_k)
        GRPC_ITEMS.labels(self.name, "Search").inc(len(texts))
        return retriever_pb2.SearchResponse(
            results=[
                retriever_pb2.HitList(
                    hits=[retriever_pb2.Hit(product=product_message(p), score=score) for p, score in hits]
                )
                for hits in results
            ],
            index_version=index_version,
        )

    async def Describe(
        self, request: common_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ServiceInfo:
        served = self.served  # read once: every field describes the same pair
        if served is None:
            raise NotReady("retriever is still loading its index")
        return common_pb2.ServiceInfo(
            service=self.name,
            engine=f"faiss-{served.kind}",
            version=f"{served.version}/{served.encoder.fingerprint}",
            details={
                "products": str(len(served.products)),
                "device": served.encoder.device,
                "encoder": served.encoder.fingerprint,
                "model": served.model,
                "shard": self.settings.shard,
                "index_version": served.version,
                "index_type": served.kind,
                "index_device": "gpu" if served.index.on_gpu else "cpu",
                "reload_error": (self.watcher.last_error if self.watcher else None) or "",
            },
        )
