"""Retrieval metrics on hand-made rankings with known answers; labels -> queries; exact search; cache."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from services.core.catalog import Product
from services.core.encoder import Encoder
from services.core.encoder_backend import EncoderBackend
from services.core.errors import InvalidInput
from services.lab.labels import load_labels
from services.lab.retriever.eval_rewrites import read_rewrites, rewrites_from_file
from services.lab.retriever.evaluate import (
    LabelledQuery,
    catalog_embeddings,
    evaluate_modes,
    exact_search,
    fuse,
    labelled_queries,
    ndcg_at,
    parse_ks,
    recall_at,
    recall_curve,
    reciprocal_rank,
    union_at,
    union_metrics,
)

REL = frozenset({"a", "b"})


def test_recall_counts_relevant_products_in_the_top_k() -> None:
    ranking = ["x", "a", "y", "b"]
    assert recall_at(ranking, REL, 1) == 0.0
    assert recall_at(ranking, REL, 2) == 0.5
    assert recall_at(ranking, REL, 4) == 1.0
    assert recall_at(ranking, REL, 100) == 1.0  # k past the ranking's end
    with pytest.raises(ValueError):
        recall_at(ranking, frozenset(), 1)


def test_ndcg_uses_graded_gains_against_the_ideal_order() -> None:
    gains = {"a": 1.0, "b": 0.5, "c": 0.0}
    assert ndcg_at(["a", "b", "x"], gains) == pytest.approx(1.0)
    # b first, then a: (0.5/1 + 1/log2(3)) / (1 + 0.5/log2(3))
    expected = (0.5 + 1 / math.log2(3)) / (1 + 0.5 / math.log2(3))
    assert ndcg_at(["b", "a"], gains) == pytest.approx(expected)
    assert ndcg_at(["x", "y"], gains) == 0.0
    # Only the top k count: a relevant product at rank 3 is outside nDCG@2.
    assert ndcg_at(["x", "y", "a"], gains, k=2) == 0.0


def test_reciprocal_rank_is_one_over_the_first_relevant_rank() -> None:
    assert reciprocal_rank(["a", "b"], REL) == 1.0
    assert reciprocal_rank(["x", "y", "b"], REL) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "y"], REL) == 0.0


def test_union_keeps_each_text_top_k_once_in_order() -> None:
    rankings = [["x", "a", "y"], ["a", "b", "z"], ["q"]]
    assert union_at(rankings, 2) == ["x", "a", "b", "q"]
    assert union_at(rankings, 1) == ["x", "a", "q"]
    queries = [LabelledQuery("q", {"a": 1.0, "b": 1.0}, REL)]
    metrics = union_metrics([rankings], queries, [1, 2])
    assert metrics["recall@1"] == 0.5 and metrics["union_size@1"] == 3
    assert metrics["recall@2"] == 1.0 and metrics["union_size@2"] == 4


def test_fuse_keeps_each_product_at_its_best_score_within_the_budget() -> None:
    query = [("x", 0.9), ("a", 0.5), ("y", 0.4)]
    rewrite = [("a", 0.95), ("b", 0.6), ("x", 0.1)]
    assert fuse([query, rewrite], 3) == ["a", "x", "b"]
    assert fuse([query, rewrite], 10) == ["a", "x", "b", "y"]
    assert fuse([[("b", 0.5)], [("a", 0.5)]], 2) == ["a", "b"]  # ties by product id


def test_modes_from_hits_and_the_recall_curve() -> None:
    queries = [
        LabelledQuery("q1", {"a": 1.0, "b": 0.5}, REL),
        LabelledQuery("q2", {"c": 1.0}, frozenset({"c"})),
    ]
    query_hits = [[("x", 0.9), ("a", 0.8)], [("c", 0.7), ("z", 0.1)]]
    rewrite_hits = [[[("b", 0.95), ("y", 0.2)]], []]
    metrics, curves = evaluate_modes(queries, query_hits, rewrite_hits, [1, 2])
    assert metrics["query"]["recall@1"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert metrics["query"]["recall@2"] == pytest.approx(0.75)  # (0.5 + 1) / 2
    assert metrics["query"]["mrr"] == pytest.approx(0.75)  # (1/2 + 1) / 2
    # fused q1: b 0.95, x 0.9, a 0.8 -> recall@1 0.5, recall@2 0.5; q2 unchanged
    assert metrics["fused"]["recall@1"] == pytest.approx(0.75)
    assert metrics["fused"]["recall@2"] == pytest.approx(0.75)
    # union q1 at k=1: {x, b}; at k=2: {x, a, b, y}
    assert metrics["union"]["recall@1"] == pytest.approx(0.75)
    assert metrics["union"]["recall@2"] == pytest.approx(1.0)
    assert metrics["union"]["union_size@2"] == pytest.approx(3.0)  # (4 + 2) / 2
    assert curves["query"] == pytest.approx([0.5, 0.75])
    assert set(curves) == {"query", "fused", "union"}
    assert curves["union"] == pytest.approx([metrics["union"]["recall@1"], metrics["union"]["recall@2"]])
    assert recall_curve([["a"]], queries[:1], 3) == pytest.approx([0.5, 0.5, 0.5])


def test_labelled_queries_group_by_query_and_count_what_cannot_be_used(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title\n1,Red Drill\n2,Blue Hose\n3,Green Lamp\n")
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "product_uid,search_term,relevance\n"
        "1,red drill,3\n2,Red Drill,1\n3,red drill,2.67\n"  # one query in two spellings
        "2,blue thing,2\n"  # labelled, but nothing reaches 2.33
        "9,lamp,3\n"  # unknown product id
        "3,,3\n"  # empty query
    )
    label_set = load_labels(labels, catalog, on_error="skip")
    products = [Product("1", "Red Drill"), Product("2", "Blue Hose"), Product("3", "Green Lamp")]
    found = labelled_queries(label_set, products)
    assert [q.text for q in found.queries] == ["red drill"]
    assert found.queries[0].relevant == {"1", "3"}
    assert found.queries[0].gains == pytest.approx({"1": 1.0, "2": 0.0, "3": 0.835})
    assert found.counts["queries_without_relevant"] == 1
    assert found.counts["skipped_unknown_product_id"] == 1
    assert found.counts["skipped_empty_query"] == 1
    assert found.counts["skipped_rows"] == 2
    strict = load_labels(labels, catalog, relevant_at=3.0, on_error="skip")
    assert labelled_queries(strict, products).queries[0].relevant == {"1"}
    none = load_labels(labels, catalog, relevant_at=3.0, on_error="skip")
    none.pairs = [p for p in none.pairs if p.product != "1"]
    with pytest.raises(InvalidInput, match="no query has a relevant product"):
        labelled_queries(none, products)


def test_exact_search_ranks_by_inner_product() -> None:
    catalog = np.eye(4, dtype=np.float32)
    queries = np.array([[0.1, 0.9, 0.5, 0], [1, 0, 0, 0]], dtype=np.float32)
    hits = exact_search(queries, catalog, ["a", "b", "c", "d"], depth=2)
    assert [p for p, _ in hits[0]] == ["b", "c"]
    assert hits[1][0] == ("a", pytest.approx(1.0))
    assert len(exact_search(queries, catalog, ["a", "b", "c", "d"], depth=10)[0]) == 4


class CountingBackend(EncoderBackend):
    """Deterministic vectors from the text length; counts texts embedded (tests the cache wiring)."""

    name: ClassVar[str] = "counting"
    dim = 2

    def __init__(self) -> None:
        self.texts = 0

    @classmethod
    def load(cls, path: Path, device: str, batch_size: int, cache_dir: Path | None) -> CountingBackend:
        return cls()

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        angles = np.array([len(t) for t in texts], dtype=np.float32)
        return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def test_catalog_embeddings_are_cached_per_encoder_and_catalog(tmp_path: Path) -> None:
    products = [Product("1", "Drill"), Product("2", "Garden Hose")]
    backend = CountingBackend()
    encoder = Encoder.from_backend(backend, "counting:1")
    first, cached = catalog_embeddings(encoder, products, "sha-a", tmp_path)
    assert not cached and backend.texts == 2 and first.shape == (2, 2)
    again, cached = catalog_embeddings(encoder, products, "sha-a", tmp_path)
    assert cached and backend.texts == 2 and np.array_equal(first, again)
    _, cached = catalog_embeddings(encoder, products, "sha-b", tmp_path)  # another catalog
    assert not cached and backend.texts == 4
    other = Encoder.from_backend(backend, "counting:2")  # another model
    _, cached = catalog_embeddings(other, products, "sha-a", tmp_path)
    assert not cached and backend.texts == 6


def test_parse_ks() -> None:
    assert parse_ks("100,10") == [10, 100]
    assert parse_ks("5") == [5]
    for bad in ("", "0,10", "ten", "10,-1"):
        with pytest.raises(InvalidInput, match="--k"):
            parse_ks(bad)


def test_rewrites_file_by_normalized_query(tmp_path: Path) -> None:
    path = tmp_path / "rewrites.jsonl"
    path.write_text('{"query": "Red  Drill", "rewrites": ["cordless drill", " "]}\n\n')
    assert read_rewrites(path) == {"red drill": ["cordless drill"]}
    rewrites, missing = rewrites_from_file(path, ["red drill", "lamp"])
    assert rewrites == [["cordless drill"], []] and missing == 1
    path.write_text('{"query": "x", "rewrites": "not a list"}\n')
    with pytest.raises(InvalidInput, match="line 1"):
        read_rewrites(path)
