"""Hot reload: serve a new index version as soon as the index root's CURRENT points at it.

The watcher polls CURRENT; when it names a version other than the served one it loads that version on a
thread of its own, not the service's model thread, so searches keep running on the old index while a big
index (or the new model a version was built with) loads. The loader checks the encoder fingerprint and
shard; then one reference assignment swaps what is served (the retriever's encoder and index together):
a search that already holds the old pair finishes on it. A version that fails to load, index or model,
is logged and remembered (not retried until CURRENT changes again) while the old version keeps serving.

Metrics:
- tailsynth_retriever_index_reloads_total{status}: reload attempts, status ok or failed.
- tailsynth_retriever_index_products: products in the served index version.
- tailsynth_retriever_index_loaded_timestamp_seconds: Unix time the served version was loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from prometheus_client import Counter, Gauge

from services.core.catalog import Product
from services.core.index_layout import CURRENT

log = logging.getLogger(__name__)

RELOADS = Counter(
    "tailsynth_retriever_index_reloads_total", "Index hot-reload attempts, by outcome.", ["status"]
)
INDEX_PRODUCTS = Gauge("tailsynth_retriever_index_products", "Products in the served index version.")
INDEX_LOADED = Gauge(
    "tailsynth_retriever_index_loaded_timestamp_seconds", "Unix time the served index version was loaded."
)


def pointed_version(root: Path) -> str | None:
    """The version CURRENT names, or None while there is none (or it cannot be read)."""
    try:
        return (root / CURRENT).read_text().strip() or None
    except OSError:
        return None


class Servable(Protocol):
    """An index version as served: a ProductIndex, or the retriever's (encoder, index) pair."""

    @property
    def version(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def products(self) -> list[Product]: ...


S = TypeVar("S", bound=Servable)


def record_served(index: Servable) -> None:
    INDEX_PRODUCTS.set(len(index.products))
    INDEX_LOADED.set(time.time())


class IndexWatcher(Generic[S]):
    def __init__(
        self,
        root: Path,
        interval_s: float,
        served: Callable[[], S],
        open_index: Callable[[], S],
        swap: Callable[[S], None],
    ) -> None:
        self.root = root
        self.interval_s = interval_s
        self.served = served
        self.open_index = open_index
        self.swap = swap
        self.failed_version: str | None = None
        self.last_error: str | None = None

    async def check(self) -> bool:
        """Load and serve the version CURRENT names if it is new; True when the served index changed."""
        pointer = await asyncio.to_thread(pointed_version, self.root)
        if pointer is None or pointer == self.served().version or pointer == self.failed_version:
            return False
        old = self.served().version
        try:
            index = await asyncio.to_thread(self.open_index)
        except Exception as error:  # whatever is wrong with the new version, the old one keeps serving
            self.failed_version = pointer
            self.last_error = f"{pointer}: {error}"
            RELOADS.labels("failed").inc()
            log.error("index version %s not loaded, still serving %s: %s", pointer, old, error)
            return False
        self.swap(index)
        self.failed_version = self.last_error = None
        RELOADS.labels("ok").inc()
        record_served(index)
        log.info(
            "now serving index %s (%s, %d products; was %s)",
            index.version,
            index.kind,
            len(index.products),
            old,
        )
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check()
            except Exception:  # the watcher must outlive any one bad check
                log.exception("index reload check failed")
