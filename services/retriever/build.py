"""`synth index build`: catalog file -> embeddings -> FAISS index under the state dir."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from services.core.catalog import load_catalog
from services.core.encoder import Encoder
from services.core.index_layout import current_version_dir
from services.retriever import shards
from services.retriever.config import RetrieverSettings
from services.retriever.index import IndexSpec, build_index, choose_spec, file_sha256, save_index
from services.retriever.model import model_dir_of, open_encoder

log = logging.getLogger(__name__)


def index_is_current(settings: RetrieverSettings, catalog: Path) -> bool:
    """True when the served index was built from this exact catalog file (and the configured model)."""
    try:
        manifest = json.loads(
            (current_version_dir(settings.resolved_index_dir) / "manifest.json").read_text()
        )
    except Exception:
        return False
    wanted_model = settings.model_dir.expanduser().resolve() if settings.model_dir else None
    return bool(
        manifest.get("catalog_sha256") == file_sha256(catalog)
        and shards.built_for(manifest) == settings.shard
        and manifest.get("model_dir") == (str(wanted_model) if wanted_model else None)
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


def build_from_catalog(
    settings: RetrieverSettings,
    catalog: Path,
    encoder: Encoder | None = None,
    model_dir: Path | None = None,
) -> Path:
    """Encode the catalog (this shard of it) with `encoder`, else the model at `model_dir`, else the
    settings' model_dir, else the packaged MiniLM, and publish a new index version."""
    started = time.perf_counter()
    encoder = encoder or open_encoder(settings, model_dir)  # a bad model fails before the catalog is read
    products = shards.select(load_catalog(catalog), settings.shard_spec)
    spec = spec_for(settings, len(products))
    log.info("encoding %d products (shard %s) from %s", len(products), settings.shard, catalog)
    vectors = encoder.encode([p.text() for p in products])
    built = build_index(
        products, vectors, spec, encoder.fingerprint, file_sha256(catalog), model_dir_of(encoder)
    )
    shards.record(built.manifest, settings.shard_spec)
    target = save_index(built, settings.resolved_index_dir)
    log.info(
        "index %s (%s, encoder %s) written to %s in %.1fs",
        built.version,
        spec.kind,
        encoder.fingerprint,
        target,
        time.perf_counter() - started,
    )
    return target
