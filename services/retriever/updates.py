"""Catalog updates without a full rebuild: add (or replace) products and remove products by id.

Each update loads the CURRENT version, applies the change to a copy and publishes a NEW version
directory, flipping CURRENT atomically; a running retriever picks it up by hot reload.

Flat and IVF indexes remove vectors for real (faiss remove_ids; labels of the rest stay valid).
faiss cannot remove nodes from an HNSW graph, so removed HNSW labels become tombstones that every search
filters out (an IDSelector), which keeps updates cheap for mid-size catalogs. Tombstones still cost
graph traversal and recall, so past MAX_TOMBSTONE_FRACTION an update is refused with a message to rebuild.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from services.core.catalog import Product, load_catalog
from services.core.encoder import Encoder
from services.core.errors import ConfigError, InvalidInput
from services.core.index_layout import current_version_dir
from services.retriever import shards
from services.retriever.config import RetrieverSettings
from services.retriever.index import (
    FORMAT,
    ProductIndex,
    file_sha256,
    load_index,
    load_version,
    new_version,
    read_manifest,
    save_index,
)
from services.retriever.index_types import add_vectors
from services.retriever.model import open_recorded_encoder

log = logging.getLogger(__name__)

MAX_TOMBSTONE_FRACTION = 0.2
MAX_LISTED_IDS = 10
LOCK_FILE = ".update.lock"


@dataclass
class UpdateReport:
    """What an update did; `version` is None when nothing changed and nothing was published."""

    version: str | None = None
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    removed: int = 0
    other_shard: int = 0
    duplicates: int = 0
    blank_lines: int = 0
    unknown: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{name} {count}" for name, count in self._counts() if count]
        if self.unknown:
            shown = ", ".join(self.unknown[:MAX_LISTED_IDS])
            more = (
                f" and {len(self.unknown) - MAX_LISTED_IDS} more"
                if len(self.unknown) > MAX_LISTED_IDS
                else ""
            )
            parts.append(f"unknown ids {len(self.unknown)} ({shown}{more})")
        outcome = f"new index version {self.version}" if self.version else "nothing changed, no new version"
        return f"{outcome}: " + (", ".join(parts) or "no products given")

    def _counts(self) -> list[tuple[str, int]]:
        return [
            ("added", self.added),
            ("replaced", self.replaced),
            ("unchanged", self.unchanged),
            ("removed", self.removed),
            ("in another shard (skipped)", self.other_shard),
            ("duplicate lines", self.duplicates),
            ("blank lines", self.blank_lines),
        ]


def apply_update(
    current: ProductIndex,
    upserts: list[Product],
    vectors: np.ndarray,
    removals: list[str],
    note: dict[str, Any],
) -> ProductIndex:
    """A new ProductIndex: `removals` and the old versions of `upserts` dropped, `upserts` added.

    `current` is left untouched (its faiss index is cloned). `vectors` are the upserts' embeddings.
    """
    if len(upserts) != len(vectors):
        raise ValueError(f"{len(upserts)} products but {len(vectors)} vectors")
    if current.manifest.get("format", FORMAT) < FORMAT:
        raise ConfigError(
            f"index {current.version} has format {current.manifest.get('format')}, which numbers vectors by "
            "position and cannot be updated in place; rebuild it once with: synth index build --catalog FILE"
        )
    row_of = {product.id: row for row, product in enumerate(current.products)}
    dropped_rows = sorted({row_of[i] for i in removals} | {row_of[p.id] for p in upserts if p.id in row_of})
    dropped = current.labels[dropped_rows]
    remaining = len(current.products) - len(dropped_rows) + len(upserts)
    if remaining == 0:
        raise InvalidInput("the update would remove every product; build a new index from a catalog instead")
    index = faiss.clone_index(current.index)
    tombstones = current.tombstones
    if current.kind == "hnsw":
        tombstones = np.union1d(tombstones, dropped)
        total = index.ntotal + len(upserts)
        if len(tombstones) > MAX_TOMBSTONE_FRACTION * total:
            raise ConfigError(
                f"HNSW cannot delete vectors; {len(tombstones)} of {total} would be removed-but-filtered "
                f"(over {MAX_TOMBSTONE_FRACTION:.0%}), which costs recall and speed: rebuild instead with "
                "synth index build --catalog FILE"
            )
    elif len(dropped):
        gone = index.remove_ids(faiss.IDSelectorBatch(dropped))
        if gone != len(dropped):
            raise ConfigError(f"index removed {gone} vectors, expected {len(dropped)}; rebuild it")
    keep = np.ones(len(current.products), dtype=bool)
    keep[dropped_rows] = False
    new_labels = np.arange(current.next_label, current.next_label + len(upserts), dtype=np.int64)
    if upserts:
        add_vectors(index, current.kind, vectors, new_labels)
    products = [p for p, kept in zip(current.products, keep, strict=True) if kept] + upserts
    labels = np.concatenate([current.labels[keep], new_labels])
    manifest = dict(current.manifest)
    manifest.update(
        version=new_version(str(note.get("file_sha256", "update"))),
        count=len(products),
        next_label=int(current.next_label + len(upserts)),
        tombstones=len(tombstones),
        parent=current.version,
        updated_at=time.time(),
        updates=[*current.manifest.get("updates", []), note],
    )
    return ProductIndex(index, products, manifest, labels, tombstones)


@contextlib.contextmanager
def update_lock(root: Path) -> Iterator[None]:
    """One update at a time per index root: a second would publish a version that lacks the first's change."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / LOCK_FILE).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_products(settings: RetrieverSettings, catalog: Path, encoder: Encoder | None = None) -> UpdateReport:
    """Add new products and replace changed ones (same id) from a catalog file.

    The new products are encoded with the model the current version records (its fingerprint checked),
    whatever model the settings name today: one index never mixes two models' vectors.
    """
    products = load_catalog(catalog)
    root = settings.resolved_index_dir
    report = UpdateReport()
    with update_lock(root):
        directory = current_version_dir(root)
        encoder = encoder or open_recorded_encoder(settings, read_manifest(directory))
        current = load_version(directory, encoder.fingerprint)
        shards.check_manifest(current.manifest, settings.shard_spec, root)
        existing = {p.id: p for p in current.products}
        upserts = []
        for product in products:
            if not settings.shard_spec.holds(product.id):
                report.other_shard += 1
            elif product.id not in existing:
                report.added += 1
                upserts.append(product)
            elif existing[product.id] != product:
                report.replaced += 1
                upserts.append(product)
            else:
                report.unchanged += 1
        if not upserts:
            return report
        vectors = encoder.encode([p.text() for p in upserts])
        note = {
            "op": "add",
            "file_sha256": file_sha256(catalog),
            "added": report.added,
            "replaced": report.replaced,
        }
        updated = apply_update(current, upserts, vectors, [], note)
        save_index(updated, root)
    report.version = updated.version
    log.info("index %s: %s", updated.version, report.summary())
    return report


def read_ids(path: Path, report: UpdateReport) -> list[str]:
    """Ids from a file, one per line, first occurrence kept; blank and repeated lines are counted."""
    if not path.is_file():
        raise InvalidInput(f"id file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad_line = raw[: error.start].count(b"\n") + 1
        raise InvalidInput(f"{path}: line {bad_line}: not valid UTF-8") from None
    ids: dict[str, None] = {}
    for line in text.splitlines():
        product_id = line.strip()
        if not product_id:
            report.blank_lines += 1
        elif product_id in ids:
            report.duplicates += 1
        else:
            ids[product_id] = None
    return list(ids)


def remove_products(
    settings: RetrieverSettings, ids_file: Path, encoder_fingerprint: str | None = None
) -> UpdateReport:
    """Remove products by id; unknown ids are reported, not fatal."""
    report = UpdateReport()
    ids = read_ids(ids_file, report)
    root = settings.resolved_index_dir
    with update_lock(root):
        fingerprint = encoder_fingerprint or _served_fingerprint(root)
        current = load_index(root, fingerprint)
        known = {p.id for p in current.products}
        report.unknown = [i for i in ids if i not in known]
        removals = [i for i in ids if i in known]
        report.removed = len(removals)
        if not removals:
            return report
        note = {"op": "remove", "file_sha256": file_sha256(ids_file), "removed": len(removals)}
        updated = apply_update(current, [], np.zeros((0, current.index.d), dtype=np.float32), removals, note)
        save_index(updated, root)
    report.version = updated.version
    log.info("index %s: %s", updated.version, report.summary())
    return report


def _served_fingerprint(root: Path) -> str:
    """Removing needs no encoder: keep the fingerprint the current version was built with."""
    fingerprint = read_manifest(current_version_dir(root)).get("encoder")
    if not isinstance(fingerprint, str):
        raise ConfigError(f"index under {root} has no encoder fingerprint; rebuild it")
    return fingerprint
