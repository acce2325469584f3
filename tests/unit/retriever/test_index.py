from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from services.retriever.catalog import Product
from services.retriever.index import IndexSpec, build_index, choose_spec, load_index, save_index


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Normalised vectors around random centres (HNSW recall is meaningless on i.i.d. noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    vectors = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def products(n: int) -> list[Product]:
    return [Product(id=f"P{i}", title=f"product {i}") for i in range(n)]


def test_auto_picks_flat_for_small_catalogs_and_hnsw_for_large() -> None:
    assert choose_spec("auto", 100, 1000, 32, 200).kind == "flat"
    assert choose_spec("auto", 5000, 1000, 32, 200).kind == "hnsw"
    assert choose_spec("hnsw", 100, 1000, 32, 200).kind == "hnsw"


def test_hnsw_finds_what_exact_search_finds() -> None:
    vectors, queries = clustered(3000), clustered(50, seed=1)
    flat = build_index(products(3000), vectors, IndexSpec("flat"), "enc", "sha")
    hnsw = build_index(products(3000), vectors, IndexSpec("hnsw", 32, 200), "enc", "sha")
    exact = [{p.id for p, _ in hits} for hits in flat.search(queries, 10)]

    def recall(ef_search: int) -> float:
        approx = [{p.id for p, _ in hits} for hits in hnsw.search(queries, 10, ef_search=ef_search)]
        return float(np.mean([len(a & e) / 10 for a, e in zip(approx, exact, strict=True)]))

    assert recall(128) >= 0.95  # the service's default efSearch
    assert recall(10) < recall(256)  # efSearch really reaches the search


def test_k_above_the_catalog_size_returns_every_product_once() -> None:
    index = build_index(products(5), clustered(5), IndexSpec("flat"), "enc", "sha")
    hits = index.search(clustered(1, seed=3), 50)[0]
    assert sorted(p.id for p, _ in hits) == [f"P{i}" for i in range(5)]


def test_saved_index_loads_and_refuses_another_encoder(tmp_path: Path) -> None:
    built = build_index(products(40), clustered(40), IndexSpec("hnsw", 8, 40), "encoder-a", "abc123")
    save_index(built, tmp_path)
    loaded = load_index(tmp_path, "encoder-a")
    assert loaded.kind == "hnsw" and [p.id for p in loaded.products] == [p.id for p in built.products]
    with pytest.raises(ConfigError, match="built with encoder 'encoder-a'"):
        load_index(tmp_path, "encoder-b")


def test_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="synth index build"):
        load_index(tmp_path, "encoder-a")
