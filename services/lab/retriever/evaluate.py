"""`synth eval retrieval`: how well the encoder finds labelled relevant products in the whole catalog.

Every catalog product is embedded (cached on disk by encoder fingerprint and catalog hash) and every
labelled query with at least one relevant product is searched exactly (inner product over all rows).
Metrics per query, averaged over queries:

- recall@k: relevant products in the top k / relevant products labelled for the query;
- nDCG@10: DCG of the top 10 with the label grades in [0, 1] as gains (gain / log2(rank + 1)) over the
  DCG of the query's labelled products in grade order;
- MRR: 1 / rank of the first relevant product in the searched depth (0 when none is found there).

With rewrites (services/lab/retriever/eval_rewrites.py) two more modes: `union`, the union of the query's
top k and each rewrite's top k (more than k candidates; BEQUE's measure, with the mean union size), and
`fused`, one list of k made by keeping each product's best score over all texts (the pipeline's and the
sharded retriever's merge rule), compared with the query alone at an equal budget.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.core.catalog import Product
from services.core.encoder import Encoder
from services.core.errors import InvalidInput
from services.core.text import normalize_query
from services.lab.labels import LabelSet
from services.pipeline.clients import merge_hits
from services.pipeline.domain import Hit

log = logging.getLogger(__name__)

NDCG_K = 10
SEARCH_CHUNK = 256  # queries per matrix product: 256 x 54k floats is ~55 MB
EMBEDDINGS_FORMAT = "product-text-v1"  # bump when what is embedded per product changes


@dataclass(frozen=True)
class LabelledQuery:
    text: str
    gains: dict[str, float]  # product id -> grade in [0, 1], every labelled product of the query
    relevant: frozenset[str]


@dataclass
class QuerySet:
    queries: list[LabelledQuery]
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- metrics on one ranking (pure)


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int) -> float:
    """Share of the relevant products found in the first k of the ranking."""
    if not relevant:
        raise ValueError("recall is undefined without relevant products")
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def ndcg_at(ranked: Sequence[str], gains: dict[str, float], k: int = NDCG_K) -> float:
    """DCG of the top k (linear gains) over the ideal DCG of the labelled products."""
    dcg = sum(gains.get(product, 0.0) / math.log2(rank + 2) for rank, product in enumerate(ranked[:k]))
    ideal_gains = sorted(gains.values(), reverse=True)[:k]
    ideal = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal_gains))
    return dcg / ideal if ideal > 0 else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    return next((1.0 / (rank + 1) for rank, product in enumerate(ranked) if product in relevant), 0.0)


def union_at(rankings: Sequence[Sequence[str]], k: int) -> list[str]:
    """The top k of every ranking together, each product once, in order of first appearance."""
    return list(dict.fromkeys(product for ranking in rankings for product in ranking[:k]))


def fuse(results: Sequence[Sequence[tuple[str, float]]], k: int) -> list[str]:
    """One ranking of k from several texts' (product, score) lists: best score per product."""
    lists = [[Hit(product, "", "", score) for product, score in hits] for hits in results]
    return [hit.product_id for hit in merge_hits(lists, k)]


# ---------------------------------------------------------------- metrics over queries


def ranking_metrics(
    rankings: Sequence[Sequence[str]], queries: Sequence[LabelledQuery], ks: Sequence[int]
) -> dict[str, float]:
    """Mean recall@k for each k, nDCG@10 and MRR of one ranking per query."""
    pairs = list(zip(rankings, queries, strict=True))
    out: dict[str, float] = {
        f"recall@{k}": float(np.mean([recall_at(r, q.relevant, k) for r, q in pairs])) for k in ks
    }
    out[f"ndcg@{NDCG_K}"] = float(np.mean([ndcg_at(r, q.gains) for r, q in pairs]))
    out["mrr"] = float(np.mean([reciprocal_rank(r, q.relevant) for r, q in pairs]))
    out["queries"] = len(queries)
    return out


def recall_curve(
    rankings: Sequence[Sequence[str]], queries: Sequence[LabelledQuery], depth: int
) -> list[float]:
    """Mean recall@k for k = 1..depth."""
    hits = np.zeros(depth, dtype=np.float64)
    for ranking, query in zip(rankings, queries, strict=True):
        found = np.array([p in query.relevant for p in ranking[:depth]], dtype=np.float64)
        found = np.pad(found, (0, depth - len(found)))
        hits += np.cumsum(found) / len(query.relevant)
    return (hits / max(len(queries), 1)).tolist()


def union_metrics(
    text_rankings: Sequence[Sequence[Sequence[str]]], queries: Sequence[LabelledQuery], ks: Sequence[int]
) -> dict[str, float]:
    """recall@k of the union of every text's top k, and the mean size of that union."""
    out: dict[str, float] = {}
    for k in ks:
        unions = [union_at(rankings, k) for rankings in text_rankings]
        out[f"recall@{k}"] = float(
            np.mean([recall_at(u, q.relevant, len(u)) for u, q in zip(unions, queries, strict=True)])
        )
        out[f"union_size@{k}"] = float(np.mean([len(u) for u in unions]))
    out["queries"] = len(queries)
    return out


def union_curve(
    text_rankings: Sequence[Sequence[Sequence[str]]], queries: Sequence[LabelledQuery], depth: int
) -> list[float]:
    """Union recall with k per text = 1..depth, growing each query's union one rank at a time."""
    totals = np.zeros(depth, dtype=np.float64)
    for rankings, query in zip(text_rankings, queries, strict=True):
        seen: set[str] = set()
        found = 0
        for k in range(depth):
            for ranking in rankings:
                if k < len(ranking) and ranking[k] not in seen:
                    seen.add(ranking[k])
                    found += ranking[k] in query.relevant
            totals[k] += found / len(query.relevant)
    return (totals / max(len(queries), 1)).tolist()


# ---------------------------------------------------------------- labels -> queries


def labelled_queries(labels: LabelSet, products: Sequence[Product]) -> QuerySet:
    """Group the label pairs by normalized query; products join by id, or by exact title for label
    files that name products inline. Queries without a relevant product in the catalog are counted."""
    ids = {p.id for p in products}
    by_title: dict[str, str] = {}
    for item in products:
        by_title.setdefault(item.title.casefold(), item.id)
    grouped: dict[str, tuple[str, dict[str, float], set[str]]] = {}
    not_in_catalog = 0
    for pair in labels.pairs:
        product = pair.product if pair.product in ids else by_title.get(pair.product.casefold())
        if product is None:
            not_in_catalog += 1
            continue
        text, gains, relevant = grouped.setdefault(normalize_query(pair.query), (pair.query, {}, set()))
        gains[product] = max(gains.get(product, 0.0), pair.grade)
        if pair.relevant:
            relevant.add(product)
    queries = [
        LabelledQuery(text, gains, frozenset(relevant))
        for text, gains, relevant in grouped.values()
        if relevant
    ]
    counts = {
        "label_rows": labels.rows,
        "pairs": len(labels.pairs),
        "pairs_not_in_catalog": not_in_catalog,
        "labelled_queries": len(grouped),
        "queries_without_relevant": len(grouped) - len(queries),
        "queries": len(queries),
        "relevant_pairs": sum(len(q.relevant) for q in queries),
        "skipped_rows": labels.skipped,
    }
    counts.update(
        {f"skipped_{kind.replace(' ', '_')}": len(lines) for kind, lines in labels.problems.items()}
    )
    if not queries:
        raise InvalidInput(
            f"{labels.path}: no query has a relevant product in the catalog "
            f"(relevant at {labels.scale.relevant_at:g} on scale {labels.scale.name}; "
            f"{not_in_catalog} labelled pairs name products not in the catalog)"
        )
    return QuerySet(queries, counts)


# ---------------------------------------------------------------- embeddings and exact search


def catalog_embeddings(
    encoder: Encoder, products: Sequence[Product], catalog_sha256: str, cache_dir: Path
) -> tuple[np.ndarray, bool]:
    """(one normalised row per product, read from the cache): encoded once per (encoder, catalog)."""
    key = hashlib.sha256(f"{EMBEDDINGS_FORMAT}\0{encoder.fingerprint}\0{catalog_sha256}".encode()).hexdigest()
    path = cache_dir / f"{key[:32]}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(products), encoder.dim):
            return vectors, True
        log.warning("ignoring cached embeddings %s: shape %s", path, vectors.shape)
    vectors = encode_texts(encoder, [p.text() for p in products], "catalog")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.replace(path)  # atomic: a killed run never leaves a truncated cache behind
    return vectors, False


def encode_texts(encoder: Encoder, texts: list[str], what: str) -> np.ndarray:
    """Encode in chunks with a progress bar on stderr."""
    from tqdm import tqdm

    chunk = max(encoder.batch_size, 1) * 8
    parts = [
        encoder.encode(texts[start : start + chunk])
        for start in tqdm(range(0, len(texts), chunk), desc=f"encoding {what}", unit="chunk", file=sys.stderr)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)


def exact_search(
    queries: np.ndarray, catalog: np.ndarray, ids: Sequence[str], depth: int, what: str = ""
) -> list[list[tuple[str, float]]]:
    """Top `depth` (product id, inner product) per query row, score descending, ties by product id;
    with `what`, a progress bar on stderr."""
    from tqdm import tqdm

    depth = min(depth, len(ids))
    out: list[list[tuple[str, float]]] = []
    starts = range(0, len(queries), SEARCH_CHUNK)
    for start in tqdm(starts, desc=f"searching {what}", unit="chunk", file=sys.stderr, disable=not what):
        scores = queries[start : start + SEARCH_CHUNK] @ catalog.T
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        for row, candidates in zip(scores, top, strict=True):
            ranked = sorted(((ids[i], float(row[i])) for i in candidates), key=lambda h: (-h[1], h[0]))
            out.append(ranked)
    return out


def search_texts(
    encoder: Encoder, texts: list[str], catalog: np.ndarray, ids: Sequence[str], depth: int, what: str
) -> tuple[list[list[tuple[str, float]]], float]:
    """(hits per text, seconds)."""
    began = time.monotonic()
    hits = exact_search(encode_texts(encoder, texts, what), catalog, ids, depth, what)
    return hits, time.monotonic() - began


def product_ids(hits: Sequence[tuple[str, float]]) -> list[str]:
    return [product for product, _ in hits]


def evaluate_modes(
    queries: Sequence[LabelledQuery],
    query_hits: Sequence[Sequence[tuple[str, float]]],
    rewrite_hits: Sequence[Sequence[Sequence[tuple[str, float]]]] | None,
    ks: Sequence[int],
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]]]:
    """(metrics per mode, recall curve per mode for k = 1..max(ks))."""
    depth = max(ks)
    base = [product_ids(h) for h in query_hits]
    metrics: dict[str, dict[str, Any]] = {"query": ranking_metrics(base, queries, ks)}
    curves = {"query": recall_curve(base, queries, depth)}
    if rewrite_hits is not None:
        texts = [[hits, *rewrites] for hits, rewrites in zip(query_hits, rewrite_hits, strict=True)]
        fused = [fuse(results, max(depth, NDCG_K)) for results in texts]
        metrics["fused"] = ranking_metrics(fused, queries, ks)
        curves["fused"] = recall_curve(fused, queries, depth)
        rankings = [[product_ids(h) for h in results] for results in texts]
        metrics["union"] = union_metrics(rankings, queries, ks)
        metrics["union"]["mean_rewrites"] = float(np.mean([len(r) for r in rewrite_hits]))
        curves["union"] = union_curve(rankings, queries, depth)
    return metrics, curves


def parse_ks(text: str) -> list[int]:
    """`10,100` -> [10, 100]; every k a positive integer."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise InvalidInput(
            f"--k {text!r}: expected comma-separated positive integers such as 10,100"
        ) from None
    if not ks or ks[0] < 1:
        raise InvalidInput(f"--k {text!r}: expected comma-separated positive integers such as 10,100")
    if ks[-1] > 10_000:
        raise InvalidInput(f"--k {text!r}: at most 10000")
    return ks
