"""FAISS index types (Flat, HNSW, IVF-Flat, IVF-PQ): choosing one, creating it, adding to it, searching it.

Every index is an inner-product index over normalised vectors whose faiss ids ("labels") are chosen by
the caller, so ids stay stable when products are removed:
  flat      IndexIDMap2(IndexFlatIP)   exact; labels explicit
  hnsw      IndexHNSWFlat              graph; labels are insertion order (faiss cannot remove from it)
  ivf_flat  IndexIVFFlat               coarse quantizer + exact vectors; labels explicit
  ivf_pq    IndexIVFPQ                 coarse quantizer + product-quantized codes; labels explicit
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import faiss
import numpy as np

from services.core.errors import ConfigError

KINDS = ("flat", "hnsw", "ivf_flat", "ivf_pq")
IVF_KINDS = ("ivf_flat", "ivf_pq")
# faiss's own k-means warns below 39 training points per centroid: fewer give meaningless centroids.
MIN_TRAIN_PER_CENTROID = 39
MAX_NLIST = 65_536
TRAIN_SEED = 1234


@dataclass(frozen=True)
class IndexSpec:
    """How to build an index. nlist/pq_m 0 mean "derive from the data" (see resolve_spec)."""

    kind: str  # one of KINDS
    hnsw_m: int = 32
    ef_construction: int = 200
    nlist: int = 0
    pq_m: int = 0
    pq_nbits: int = 8
    train_max: int = 200_000  # most vectors sampled to train IVF centroids and PQ codebooks

    @property
    def is_ivf(self) -> bool:
        return self.kind in IVF_KINDS


@dataclass(frozen=True)
class SearchParams:
    """Search-time knobs, applied per search (never stored in the index)."""

    ef_search: int = 128
    nprobe: int = 16


def auto_nlist(count: int, train_max: int) -> int:
    """~4*sqrt(n) inverted lists, but never more than the training sample can support."""
    trainable = min(count, train_max) // MIN_TRAIN_PER_CENTROID
    return max(1, min(int(4 * math.sqrt(count)), MAX_NLIST, trainable))


def auto_pq_m(dim: int) -> int:
    """Largest divisor of dim that is at most dim/8: 48 one-byte codes for 384-d MiniLM vectors."""
    limit = max(1, dim // 8)
    return max(m for m in range(1, limit + 1) if dim % m == 0)


def choose_spec(
    requested: str,
    count: int,
    flat_max: int,
    hnsw_m: int,
    ef_construction: int,
    *,
    hnsw_max: int = 1_000_000,
    nlist: int = 0,
    pq_m: int = 0,
    pq_nbits: int = 8,
    train_max: int = 200_000,
) -> IndexSpec:
    """The index for a catalog of `count` products: `auto` is Flat (small), HNSW (mid), IVF-Flat (large)."""
    if requested == "auto":
        kind = "flat" if count <= flat_max else "hnsw" if count <= hnsw_max else "ivf_flat"
    elif requested in KINDS:
        kind = requested
    else:
        raise ConfigError(f"unknown index type {requested!r}; expected auto or one of {', '.join(KINDS)}")
    spec = IndexSpec(kind, hnsw_m, ef_construction, nlist, pq_m, pq_nbits, train_max)
    if spec.is_ivf:
        check_trainable(spec, count)
    return spec


def _centroids(spec: IndexSpec, count: int) -> int:
    """The most centroids one k-means of this spec trains (IVF lists, or PQ codes per sub-quantizer)."""
    nlist = spec.nlist or auto_nlist(count, spec.train_max)
    return max(nlist, 2**spec.pq_nbits) if spec.kind == "ivf_pq" else nlist


def check_trainable(spec: IndexSpec, count: int) -> None:
    """Refuse an IVF/PQ index that `count` vectors (or the bounded training sample) cannot train."""
    needed = MIN_TRAIN_PER_CENTROID * _centroids(spec, count)
    available = min(count, spec.train_max)
    if available < needed:
        what = f"{spec.kind} with nlist={spec.nlist or auto_nlist(count, spec.train_max)}"
        if spec.kind == "ivf_pq":
            what += f" and {2**spec.pq_nbits} PQ codes (pq_nbits={spec.pq_nbits})"
        raise ConfigError(
            f"{what} needs at least {needed} training vectors, but only {available} are available "
            f"({count} products, training sample at most {spec.train_max}); use "
            "TAILSYNTH_RETRIEVER_INDEX_TYPE=flat or hnsw for a catalog this small, or lower "
            "TAILSYNTH_RETRIEVER_IVF_NLIST / TAILSYNTH_RETRIEVER_PQ_NBITS"
        )


def resolve_spec(spec: IndexSpec, count: int, dim: int) -> IndexSpec:
    """Fill in data-derived parameters (nlist, pq_m) so the manifest records what was really built."""
    if not spec.is_ivf:
        return spec
    nlist = spec.nlist or auto_nlist(count, spec.train_max)
    pq_m = 0
    if spec.kind == "ivf_pq":
        pq_m = spec.pq_m or auto_pq_m(dim)
        if dim % pq_m:
            raise ConfigError(
                f"TAILSYNTH_RETRIEVER_PQ_M={pq_m} does not divide the embedding dimension {dim}; "
                f"pick a divisor of {dim} (or 0 for {auto_pq_m(dim)})"
            )
    return dataclasses.replace(spec, nlist=nlist, pq_m=pq_m)


def new_index(spec: IndexSpec, dim: int, training: np.ndarray | None = None) -> faiss.Index:
    """An empty index ready for add_vectors: IVF kinds are trained on (a bounded sample of) `training`.

    Pass a spec through resolve_spec first when nlist or pq_m is 0.
    """
    if spec.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if spec.kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = spec.ef_construction
        return hnsw
    if spec.kind not in IVF_KINDS:
        raise ConfigError(f"unknown index type {spec.kind!r}")
    if training is None:
        raise ConfigError(f"{spec.kind} needs training vectors")
    if not spec.nlist or (spec.kind == "ivf_pq" and not spec.pq_m):
        spec = resolve_spec(spec, len(training), dim)
    check_trainable(spec, len(training))
    quantizer = faiss.IndexFlatIP(dim)
    index: faiss.IndexIVF
    if spec.kind == "ivf_flat":
        index = faiss.IndexIVFFlat(quantizer, dim, spec.nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(
            quantizer, dim, spec.nlist, spec.pq_m, spec.pq_nbits, faiss.METRIC_INNER_PRODUCT
        )
    index.train(_training_sample(training, spec.train_max))
    return index


def _training_sample(vectors: np.ndarray, train_max: int) -> np.ndarray:
    if len(vectors) <= train_max:
        return np.ascontiguousarray(vectors, dtype=np.float32)
    rows = np.random.default_rng(TRAIN_SEED).choice(len(vectors), train_max, replace=False)
    return np.ascontiguousarray(vectors[np.sort(rows)], dtype=np.float32)


def add_vectors(index: faiss.Index, kind: str, vectors: np.ndarray, labels: np.ndarray) -> None:
    """Add vectors under the given labels (HNSW can only number them in insertion order)."""
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(labels, dtype=np.int64)
    if kind == "hnsw":
        expected = np.arange(index.ntotal, index.ntotal + len(data), dtype=np.int64)
        if not np.array_equal(ids, expected):
            raise ConfigError("an HNSW index numbers vectors in insertion order; labels must continue it")
        index.add(data)
    else:
        index.add_with_ids(data, ids)


def search_parameters(
    kind: str, params: SearchParams, k: int, nlist: int = 0, selector: faiss.IDSelector | None = None
) -> faiss.SearchParameters | None:
    """Per-search faiss parameters: efSearch (at least k) for HNSW, nprobe (at most nlist) for IVF."""
    if kind == "hnsw":
        # SearchParametersHNSW is missing from faiss's bundled stub.
        hnsw = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        hnsw.efSearch = max(params.ef_search, k)
        if selector is not None:
            hnsw.sel = selector
        return hnsw
    if kind in IVF_KINDS:
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = max(1, min(params.nprobe, nlist) if nlist else params.nprobe)
        return ivf
    return None


def search_index(
    index: faiss.Index,
    kind: str,
    vectors: np.ndarray,
    k: int,
    params: SearchParams,
    nlist: int = 0,
    selector: faiss.IDSelector | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of the k best per query row; label -1 where fewer than k exist."""
    query = np.ascontiguousarray(vectors, dtype=np.float32)
    if k < 1 or len(query) == 0:
        return np.zeros((len(query), 0), dtype=np.float32), np.zeros((len(query), 0), dtype=np.int64)
    search_params = search_parameters(kind, params, k, nlist, selector)
    scores, labels = index.search(query, k, params=search_params)
    return scores, labels
