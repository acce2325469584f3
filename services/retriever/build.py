"""`synth index build`: catalog file -> embeddings -> FAISS index under the state dir."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from services.core.encoder import Encoder
from services.retriever import shards
from services.retriever.catalog import load_catalog
from services.retriever.config import RetrieverSettings
from services.retriever.index import (
    IndexSpec,
    build_index,
    choose_spec,
    current_version_dir,
    file_sha256,
    save_index,
)

log = logging.getLogger(__name__)


def open_encoder(settings: RetrieverSettings) -> Encoder:
    """The encoder the retriever's settings ask for; index builds, updates and the service share it."""
    return Encoder(
        device=settings.device,
        batch_size=settings.encode_batch_size,
        backend=settings.encoder_backend,
        cache_dir=settings.models_dir,
    )


def index_is_current(settings: RetrieverSettings, catalog: Path) -> bool:
    """True when the served index was built from this exact catalog file."""
    try:
        manifest = json.loads(
            (current_version_dir(settings.resolved_index_dir) / "manifest.json").read_text()
        )
    except Exception:
        return False
    return bool(
        manifest.get("catalog_sha256") == file_sha256(catalog)
        and shards.built_for(manifest) == settings.shard
    )


def spec_for(settings: RetrieverSettings, count: int) -> IndexSpec:
    """The index spec the settings ask for, for a catalog of `count` products."""
    return choose_spec(
        settings.index_type,
        count,
        settings.flat_max_products,
        settings.hnsw_m,
        settings.hnsw_ef_construction,
        hnsw_max=settings.hnsw_max_products,
        nlist=settings.ivf_nlist,
        pq_m=settings.pq_m,
        pq_nbits=settings.pq_nbits,
        train_max=settings.ivf_train_max,
    )


def build_from_catalog(settings: RetrieverSettings, catalog: Path, encoder: Encoder | None = None) -> Path:
    started = time.perf_counter()
    products = shards.select(load_catalog(catalog), settings.shard_spec)
    encoder = encoder or open_encoder(settings)
    spec = spec_for(settings, len(products))
    log.info("encoding %d products (shard %s) from %s", len(products), settings.shard, catalog)
    vectors = encoder.encode([p.text() for p in products])
    built = build_index(products, vectors, spec, encoder.fingerprint, file_sha256(catalog))
    shards.record(built.manifest, settings.shard_spec)
    target = save_index(built, settings.resolved_index_dir)
    log.info(
        "index %s (%s) written to %s in %.1fs",
        built.version,
        spec.kind,
        target,
        time.perf_counter() - started,
    )
    return target
