"""Retriever gRPC servicer: proto <-> domain only."""

from __future__ import annotations

import asyncio
import functools

import grpc

from services.core.encoder import Encoder
from services.core.errors import InvalidInput, NotReady
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean
from services.gen.synth.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc
from services.retriever.batching import Answer, SearchItem, search_batcher, search_many
from services.retriever.build import open_encoder
from services.retriever.catalog import Product
from services.retriever.config import RetrieverSettings
from services.retriever.gpu import move_to_gpu
from services.retriever.index import ProductIndex, SearchParams, load_index
from services.retriever.reload import IndexWatcher, record_served
from services.retriever.shards import check_manifest

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
    watcher: IndexWatcher | None = None
    _watching: asyncio.Task[None] | None = None

    def __init__(self, settings: RetrieverSettings) -> None:
        self.settings = settings
        self.encoder: Encoder | None = None
        self.index: ProductIndex | None = None
        self.batcher = search_batcher(
            self._search_sync, self.run_blocking, settings.batch_max_texts, settings.batch_wait_ms
        )

    def register(self, server: grpc.aio.Server) -> None:
        retriever_pb2_grpc.add_RetrieverServicer_to_server(self, server)

    def _open_index(self, encoder_fingerprint: str) -> ProductIndex:
        """Load the CURRENT index version (blocking): fingerprint and shard checked, search defaults set."""
        index = load_index(self.settings.resolved_index_dir, encoder_fingerprint)
        check_manifest(index.manifest, self.settings.shard_spec, self.settings.resolved_index_dir)
        index.search_defaults = SearchParams(self.settings.hnsw_ef_search, self.settings.ivf_nprobe)
        move_to_gpu(index, self.settings.faiss_gpu)
        return index

    def _load(self) -> None:
        encoder = open_encoder(self.settings)
        self.index = self._open_index(encoder.fingerprint)
        self.encoder = encoder

    async def load(self) -> None:
        await self.run_blocking(self._load)
        self.loaded = True
        assert self.index is not None and self.encoder is not None
        record_served(self.index)
        if self.settings.reload_interval_s > 0:
            self.watcher = IndexWatcher(
                self.settings.resolved_index_dir,
                self.settings.reload_interval_s,
                served=self._served_index,
                open_index=functools.partial(self._open_index, self.encoder.fingerprint),
                swap=self._serve,
            )
            self._watching = asyncio.create_task(self.watcher.run())

    def _served_index(self) -> ProductIndex:
        assert self.index is not None
        return self.index

    def _serve(self, index: ProductIndex) -> None:
        # One reference assignment: a search that already took the old index finishes on it.
        self.index = index

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
        index = self.index  # read once: a reload may swap self.index while this batch runs
        if self.encoder is None or index is None:
            raise NotReady("retriever is still loading its index")
        return [(index.version, hits) for hits in search_many(self.encoder, index, items)]

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
        if self.index is None or self.encoder is None:
            raise NotReady("retriever is still loading its index")
        return common_pb2.ServiceInfo(
            service=self.name,
            engine=f"faiss-{self.index.kind}",
            version=f"{self.index.version}/{self.encoder.fingerprint}",
            details={
                "products": str(len(self.index.products)),
                "device": self.encoder.device,
                "shard": self.settings.shard,
                "index_version": self.index.version,
                "index_type": self.index.kind,
                "index_device": "gpu" if self.index.on_gpu else "cpu",
                "reload_error": (self.watcher.last_error if self.watcher else None) or "",
            },
        )
