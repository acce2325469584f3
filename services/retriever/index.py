"""FAISS product index: build, persist (index + id map + encoder fingerprint), load, search.

On disk, under the index root:
  CURRENT                      name of the version being served
  <version>/index.faiss        the FAISS index (inner product over normalised vectors)
  <version>/products.jsonl     the products, one per line, in ascending label order
  <version>/labels.npy         int64 faiss label of each line of products.jsonl
  <version>/tombstones.npy     labels removed from an HNSW graph (still in it, filtered at search time)
  <version>/manifest.json      encoder fingerprint and model directory (null: the packaged model),
                               dimension, index type and parameters, catalog hash
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from services.core.catalog import Product
from services.core.durable import fsync_file, publish, write_bytes
from services.core.errors import ConfigError
from services.core.index_layout import CURRENT, PRODUCTS_FILE, current_version_dir
from services.retriever.index_types import IndexSpec as IndexSpec
from services.retriever.index_types import SearchParams as SearchParams
from services.retriever.index_types import add_vectors, new_index, resolve_spec, search_index
from services.retriever.index_types import choose_spec as choose_spec

log = logging.getLogger(__name__)

FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1: no labels.npy, labels are line numbers
# faiss's GPU k-selection handles at most 2048 neighbours per query.
GPU_MAX_K = 2048


def new_version(tag: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{tag[:8]}"


class ProductIndex:
    """A faiss index and the products behind its labels (labels ascending, products in the same order)."""

    def __init__(
        self,
        index: faiss.Index,
        products: list[Product],
        manifest: dict[str, Any],
        labels: np.ndarray | None = None,
        tombstones: np.ndarray | None = None,
    ) -> None:
        self.labels = np.arange(len(products), dtype=np.int64) if labels is None else labels.astype(np.int64)
        self.tombstones = np.zeros(0, np.int64) if tombstones is None else tombstones.astype(np.int64)
        if len(self.labels) != len(products):
            raise ConfigError(f"{len(self.labels)} labels for {len(products)} products")
        if index.ntotal != len(products) + len(self.tombstones):
            raise ConfigError(
                f"index holds {index.ntotal} vectors but the id map {len(products)} products"
                + (f" and {len(self.tombstones)} removed ones" if len(self.tombstones) else "")
            )
        if len(self.labels) > 1 and not bool(np.all(np.diff(self.labels) > 0)):
            raise ConfigError("index labels are not strictly ascending; rebuild the index")
        self.index = index
        self.products = products
        self.manifest = manifest
        self.search_defaults = SearchParams()
        self.on_gpu = False
        self._removed: faiss.IDSelector | None = None
        self._selector: faiss.IDSelector | None = None
        if len(self.tombstones):
            # Both objects are kept: the Not selector only points at the batch.
            self._removed = faiss.IDSelectorBatch(self.tombstones)
            self._selector = faiss.IDSelectorNot(self._removed)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def kind(self) -> str:
        return str(self.manifest["index_type"])

    @property
    def nlist(self) -> int:
        return int(self.manifest.get("params", {}).get("nlist", 0))

    @property
    def next_label(self) -> int:
        return int(self.manifest.get("next_label", len(self.products) + len(self.tombstones)))

    def search(
        self, vectors: np.ndarray, top_k: int, ef_search: int | None = None, nprobe: int | None = None
    ) -> list[list[tuple[Product, float]]]:
        """The top_k products per query row (fewer when the catalog is smaller); defaults from search_defaults."""
        params = SearchParams(
            ef_search=self.search_defaults.ef_search if ef_search is None else ef_search,
            nprobe=self.search_defaults.nprobe if nprobe is None else nprobe,
        )
        k = min(top_k, len(self.products), GPU_MAX_K if self.on_gpu else top_k)
        scores, labels = search_index(self.index, self.kind, vectors, k, params, self.nlist, self._selector)
        return [
            self._hits(row_labels, row_scores) for row_labels, row_scores in zip(labels, scores, strict=True)
        ]

    def _hits(self, labels: np.ndarray, scores: np.ndarray) -> list[tuple[Product, float]]:
        found = labels >= 0
        rows = np.searchsorted(self.labels, labels[found])
        hits = []
        for row, label, score in zip(rows, labels[found], scores[found], strict=True):
            if row < len(self.labels) and self.labels[row] == label:
                hits.append((self.products[row], float(score)))
        return hits


def build_index(
    products: list[Product],
    vectors: np.ndarray,
    spec: IndexSpec,
    encoder_fingerprint: str,
    catalog_sha: str,
    model_dir: Path | None = None,
) -> ProductIndex:
    """A new index of `vectors`; `model_dir` is the absolute model directory they were encoded with
    (None: the packaged model), recorded in the manifest for updates and the service."""
    spec = resolve_spec(spec, len(products), vectors.shape[1])
    index = new_index(spec, vectors.shape[1], vectors)
    labels = np.arange(len(products), dtype=np.int64)
    add_vectors(index, spec.kind, vectors, labels)
    manifest = {
        "format": FORMAT,
        "version": new_version(catalog_sha),
        "encoder": encoder_fingerprint,
        "model_dir": None if model_dir is None else str(model_dir),
        "dim": int(vectors.shape[1]),
        "count": len(products),
        "index_type": spec.kind,
        "params": dataclasses.asdict(spec),
        "next_label": len(products),
        "tombstones": 0,
        "catalog_sha256": catalog_sha,
        "built_at": time.time(),
        "updates": [],
    }
    return ProductIndex(index, products, manifest, labels)


def _unique_version(root: Path, version: str) -> str:
    candidate, n = version, 1
    while (root / candidate).exists():
        n += 1
        candidate = f"{version}-{n}"
    return candidate


def save_index(built: ProductIndex, root: Path) -> Path:
    """Write a new version directory, then atomically point CURRENT at it."""
    root.mkdir(parents=True, exist_ok=True)
    version = _unique_version(root, built.version)
    built.manifest["version"] = version
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{version}."))
    cpu_index = faiss.index_gpu_to_cpu(built.index) if built.on_gpu else built.index
    faiss.write_index(cpu_index, str(tmp / "index.faiss"))
    lines = "".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n" for p in built.products)
    (tmp / PRODUCTS_FILE).write_bytes(lines.encode())
    np.save(tmp / "labels.npy", built.labels)
    if len(built.tombstones):
        np.save(tmp / "tombstones.npy", built.tombstones)
    (tmp / "manifest.json").write_bytes(json.dumps(built.manifest, indent=2).encode())
    for file in tmp.iterdir():
        fsync_file(file)
    target = root / version
    publish(tmp, target)
    write_bytes(root / CURRENT, version.encode())
    return target


def read_manifest(directory: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"unreadable index manifest in {directory}: {error}") from None
    return manifest


def load_index(root: Path, encoder_fingerprint: str) -> ProductIndex:
    """Load the CURRENT index; refuse one built with another encoder."""
    return load_version(current_version_dir(root), encoder_fingerprint)


def load_version(directory: Path, encoder_fingerprint: str) -> ProductIndex:
    """Load the index version in `directory`; refuse one built with another encoder."""
    manifest = read_manifest(directory)
    if manifest.get("format") not in READABLE_FORMATS:
        raise ConfigError(
            f"index in {directory} has format {manifest.get('format')}, expected {FORMAT}; rebuild it"
        )
    if manifest.get("encoder") != encoder_fingerprint:
        raise ConfigError(
            f"index in {directory} was built with encoder {manifest.get('encoder')!r} but this service runs "
            f"{encoder_fingerprint!r}; rebuild it with: synth index build --catalog FILE"
        )
    try:
        with (directory / PRODUCTS_FILE).open(encoding="utf-8") as handle:
            products = [Product(**json.loads(line)) for line in handle]
        labels = np.load(directory / "labels.npy") if (directory / "labels.npy").is_file() else None
        removed = directory / "tombstones.npy"
        tombstones = np.load(removed) if removed.is_file() else None
        index = faiss.read_index(str(directory / "index.faiss"))
    except (OSError, ValueError, TypeError, RuntimeError) as error:
        raise ConfigError(f"unreadable index in {directory}: {error}") from None
    log.info("loaded index %s (%s, %d products)", manifest["version"], manifest["index_type"], len(products))
    return ProductIndex(index, products, manifest, labels, tombstones)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
