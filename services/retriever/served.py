"""What the retriever serves: an encoder and the index version built with it, as one immutable pair.

A search reads the pair once and encodes and searches with that pair's two halves, so a hot reload
that brings a new model can never make a query embedded by one model search another model's vectors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from services.core.catalog import Product
from services.core.encoder import Encoder
from services.core.index_layout import current_version_dir
from services.retriever.config import RetrieverSettings
from services.retriever.gpu import move_to_gpu
from services.retriever.index import ProductIndex, SearchParams, load_version, read_manifest
from services.retriever.model import open_recorded_encoder, recorded_model_dir, same_model
from services.retriever.shards import check_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """An index version and the encoder it was built with (model_dir None: the packaged model)."""

    encoder: Encoder
    index: ProductIndex
    model_dir: Path | None

    @property
    def version(self) -> str:
        return self.index.version

    @property
    def kind(self) -> str:
        return self.index.kind

    @property
    def products(self) -> list[Product]:
        return self.index.products

    @property
    def model(self) -> str:
        """The model in words: its directory, or the packaged one's name."""
        return str(self.model_dir) if self.model_dir else "all-MiniLM-L6-v2 (packaged)"


def open_served(settings: RetrieverSettings, previous: Served | None = None) -> Served:
    """Load the CURRENT index version and its encoder (blocking).

    The encoder of `previous` is kept when the version records the same model; otherwise the recorded
    model is loaded and its fingerprint verified against the manifest. Shard and encoder fingerprint
    are checked, search defaults set, and the index moved to the GPU when the settings ask.
    """
    root = settings.resolved_index_dir
    directory = current_version_dir(root)  # read once: CURRENT may move while this loads
    manifest = read_manifest(directory)
    if previous is not None and same_model(previous.encoder, manifest, previous.model_dir):
        encoder = previous.encoder
    else:
        encoder = open_recorded_encoder(settings, manifest)
        if previous is not None:
            log.info(
                "index %s needs encoder %s (was %s): loaded",
                manifest.get("version"),
                encoder.fingerprint,
                previous.encoder.fingerprint,
            )
    index = load_version(directory, encoder.fingerprint)
    check_manifest(index.manifest, settings.shard_spec, root)
    index.search_defaults = SearchParams(settings.hnsw_ef_search, settings.ivf_nprobe)
    move_to_gpu(index, settings.faiss_gpu)
    return Served(encoder, index, recorded_model_dir(manifest))
