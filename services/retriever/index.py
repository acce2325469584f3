"""FAISS product index: build, persist (index + id map + encoder fingerprint), load, search.

On disk, under the index root:
  CURRENT                      name of the version being served
  <version>/index.faiss        the FAISS index (inner product over normalised vectors)
  <version>/products.jsonl     row i of the index is line i
  <version>/manifest.json      encoder fingerprint, dimension, index type and parameters, catalog hash
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from services.core.durable import fsync_file, publish, write_bytes
from services.core.errors import ConfigError
from services.retriever.catalog import Product

log = logging.getLogger(__name__)

FORMAT = 1
CURRENT = "CURRENT"


@dataclass(frozen=True)
class IndexSpec:
    kind: str  # "flat" or "hnsw"
    hnsw_m: int = 32
    ef_construction: int = 200


def choose_spec(requested: str, count: int, flat_max: int, hnsw_m: int, ef_construction: int) -> IndexSpec:
    kind = requested if requested != "auto" else ("flat" if count <= flat_max else "hnsw")
    return IndexSpec(kind, hnsw_m, ef_construction)


def _new_index(spec: IndexSpec, dim: int) -> faiss.Index:
    if spec.kind == "flat":
        return faiss.IndexFlatIP(dim)
    index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = spec.ef_construction
    return index


class ProductIndex:
    def __init__(self, index: faiss.Index, products: list[Product], manifest: dict[str, Any]) -> None:
        if index.ntotal != len(products):
            raise ConfigError(f"index holds {index.ntotal} vectors but the id map {len(products)} products")
        self.index = index
        self.products = products
        self.manifest = manifest

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def kind(self) -> str:
        return str(self.manifest["index_type"])

    def search(
        self, vectors: np.ndarray, top_k: int, ef_search: int = 128
    ) -> list[list[tuple[Product, float]]]:
        k = min(top_k, len(self.products))
        params = None
        if self.kind == "hnsw":
            # SearchParametersHNSW is missing from faiss's bundled stub.
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search, k))  # type: ignore[attr-defined]
        scores, rows = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k, params=params)
        return [
            [
                (self.products[row], float(score))
                for row, score in zip(row_ids, row_scores, strict=True)
                if row >= 0
            ]
            for row_ids, row_scores in zip(rows, scores, strict=True)
        ]


def move_to_gpu(index: ProductIndex) -> bool:
    """Serve a Flat index from the GPU when faiss-gpu sees one (pip install '.[gpu]'); HNSW stays on CPU."""
    if index.kind != "flat" or not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        return False
    index.index = faiss.index_cpu_to_all_gpus(index.index)
    log.info("index %s moved to %d GPU(s)", index.version, faiss.get_num_gpus())
    return True


def build_index(
    products: list[Product], vectors: np.ndarray, spec: IndexSpec, encoder_fingerprint: str, catalog_sha: str
) -> ProductIndex:
    index = _new_index(spec, vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    manifest = {
        "format": FORMAT,
        "version": f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{catalog_sha[:8]}",
        "encoder": encoder_fingerprint,
        "dim": int(vectors.shape[1]),
        "count": len(products),
        "index_type": spec.kind,
        "params": dataclasses.asdict(spec),
        "catalog_sha256": catalog_sha,
        "built_at": time.time(),
    }
    return ProductIndex(index, products, manifest)


def save_index(built: ProductIndex, root: Path) -> Path:
    """Write a new version directory, then atomically point CURRENT at it."""
    target = root / built.version
    tmp = root / f".{built.version}.tmp"
    tmp.mkdir(parents=True, exist_ok=False)
    faiss.write_index(built.index, str(tmp / "index.faiss"))
    lines = "".join(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n" for p in built.products)
    (tmp / "products.jsonl").write_bytes(lines.encode())
    (tmp / "manifest.json").write_bytes(json.dumps(built.manifest, indent=2).encode())
    for file in tmp.iterdir():
        fsync_file(file)
    publish(tmp, target)
    write_bytes(root / CURRENT, built.version.encode())
    return target


def current_version_dir(root: Path) -> Path:
    pointer = root / CURRENT
    if not pointer.is_file():
        raise ConfigError(f"no index under {root}; build one with: synth index build --catalog FILE")
    return root / pointer.read_text().strip()


def load_index(root: Path, encoder_fingerprint: str) -> ProductIndex:
    """Load the CURRENT index; refuse one built with another encoder."""
    directory = current_version_dir(root)
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"unreadable index manifest in {directory}: {error}") from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(
            f"index in {directory} has format {manifest.get('format')}, expected {FORMAT}; rebuild it"
        )
    if manifest.get("encoder") != encoder_fingerprint:
        raise ConfigError(
            f"index in {directory} was built with encoder {manifest.get('encoder')!r} but this service runs "
            f"{encoder_fingerprint!r}; rebuild it with: synth index build --catalog FILE"
        )
    with (directory / "products.jsonl").open(encoding="utf-8") as handle:
        products = [Product(**json.loads(line)) for line in handle]
    index = faiss.read_index(str(directory / "index.faiss"))
    log.info("loaded index %s (%s, %d products)", manifest["version"], manifest["index_type"], len(products))
    return ProductIndex(index, products, manifest)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
