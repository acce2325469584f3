from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from services.retriever.index import (
    IndexSpec,
    SearchParams,
    build_index,
    choose_spec,
    load_index,
    save_index,
)
from services.retriever.index_types import auto_nlist, auto_pq_m, new_index, search_index
from tests.unit.retriever.vectors import clustered, products


def test_auto_picks_flat_for_small_hnsw_for_mid_and_ivf_for_large_catalogs() -> None:
    assert choose_spec("auto", 100, 1000, 32, 200).kind == "flat"
    assert choose_spec("auto", 5000, 1000, 32, 200).kind == "hnsw"
    assert choose_spec("auto", 5000, 1000, 32, 200, hnsw_max=4000).kind == "ivf_flat"
    assert choose_spec("hnsw", 100, 1000, 32, 200).kind == "hnsw"


def test_auto_nlist_grows_with_sqrt_n_but_stays_trainable() -> None:
    assert auto_nlist(1_000_000, 10_000_000) == 4000
    assert auto_nlist(1_000_000, 100_000) == 100_000 // 39  # bounded by the training sample
    assert auto_nlist(10**12, 10**12) == 65_536
    assert auto_pq_m(384) == 48 and auto_pq_m(32) == 4


@pytest.mark.parametrize(
    ("kind", "count", "kwargs", "message"),
    [
        ("ivf_flat", 500, {"nlist": 100}, "needs at least 3900 training vectors"),
        ("ivf_pq", 5000, {}, "256 PQ codes"),
        ("ivf_flat", 30, {}, "use TAILSYNTH_RETRIEVER_INDEX_TYPE=flat or hnsw"),
        ("ivf_flat", 100_000, {"nlist": 1000, "train_max": 20_000}, "training sample at most 20000"),
        ("annoy", 100, {}, "unknown index type 'annoy'"),
    ],
)
def test_untrainable_or_unknown_index_types_are_refused_with_a_clear_error(
    kind: str, count: int, kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        choose_spec(kind, count, 1000, 32, 200, **kwargs)


def test_pq_m_that_does_not_divide_the_dimension_is_refused() -> None:
    with pytest.raises(ConfigError, match="does not divide the embedding dimension 32"):
        build_index(products(10_000), clustered(10_000), IndexSpec("ivf_pq", pq_m=5), "enc", "sha")


def recall_at_10(approx: list[set[str]], exact: list[set[str]]) -> float:
    return float(np.mean([len(a & e) / 10 for a, e in zip(approx, exact, strict=True)]))


@pytest.mark.parametrize(
    ("spec", "nprobe", "floor"),
    [(IndexSpec("ivf_flat", nlist=64), 8, 0.9), (IndexSpec("ivf_pq", nlist=16, pq_m=16), 4, 0.6)],
)
def test_ivf_indexes_find_what_exact_search_finds_and_nprobe_reaches_the_search(
    spec: IndexSpec, nprobe: int, floor: float
) -> None:
    vectors, queries = clustered(10_000, clusters=40), clustered(50, clusters=40, seed=1)
    exact_index = build_index(products(10_000), vectors, IndexSpec("flat"), "enc", "sha")
    ivf = build_index(products(10_000), vectors, spec, "enc", "sha")
    assert ivf.manifest["params"]["nlist"] == spec.nlist and ivf.manifest["index_type"] == spec.kind
    exact = [{p.id for p, _ in hits} for hits in exact_index.search(queries, 10)]

    def recall(probes: int) -> float:
        return recall_at_10(
            [{p.id for p, _ in hits} for hits in ivf.search(queries, 10, nprobe=probes)], exact
        )

    assert recall(nprobe) >= floor
    assert recall(1) < recall(spec.nlist)
    assert recall(10 * spec.nlist) == recall(spec.nlist)  # nprobe above nlist is clamped, not an error


def test_new_index_can_be_reused_on_raw_vectors_with_search_params() -> None:
    vectors = clustered(4000)
    index = new_index(IndexSpec("ivf_flat", nlist=32), 32, vectors)
    assert index.is_trained and index.ntotal == 0
    index.add_with_ids(vectors, np.arange(4000, dtype=np.int64) + 10)
    scores, labels = search_index(index, "ivf_flat", vectors[:3], 1, SearchParams(nprobe=32), nlist=32)
    assert labels[:, 0].tolist() == [10, 11, 12] and scores.shape == (3, 1)


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


def test_an_empty_batch_of_queries_returns_no_results() -> None:
    index = build_index(products(5), clustered(5), IndexSpec("flat"), "enc", "sha")
    assert index.search(np.zeros((0, 32), dtype=np.float32), 5) == []


def test_saved_index_loads_and_refuses_another_encoder(tmp_path: Path) -> None:
    built = build_index(products(40), clustered(40), IndexSpec("hnsw", 8, 40), "encoder-a", "abc123")
    save_index(built, tmp_path)
    loaded = load_index(tmp_path, "encoder-a")
    assert loaded.kind == "hnsw" and [p.id for p in loaded.products] == [p.id for p in built.products]
    assert loaded.manifest["params"]["hnsw_m"] == 8 and loaded.manifest["format"] == 2
    with pytest.raises(ConfigError, match="built with encoder 'encoder-a'"):
        load_index(tmp_path, "encoder-b")


def test_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="synth index build"):
        load_index(tmp_path, "encoder-a")


def test_an_ivf_pq_index_round_trips_with_its_parameters(tmp_path: Path) -> None:
    vectors = clustered(10_000)
    built = build_index(products(10_000), vectors, IndexSpec("ivf_pq", nlist=16), "enc", "sha")
    save_index(built, tmp_path)
    loaded = load_index(tmp_path, "enc")
    params = loaded.manifest["params"]
    assert (params["kind"], params["nlist"], params["pq_m"], params["pq_nbits"]) == ("ivf_pq", 16, 4, 8)
    before, after = built.search(vectors[:5], 10, nprobe=4), loaded.search(vectors[:5], 10, nprobe=4)
    assert [[p.id for p, _ in hits] for hits in after] == [[p.id for p, _ in hits] for hits in before]


def test_ivf_with_k_above_what_the_probed_lists_hold_returns_only_real_products() -> None:
    vectors = clustered(2000)
    index = build_index(products(2000), vectors, IndexSpec("ivf_flat", nlist=32), "enc", "sha")
    hits = index.search(vectors[:2], 1000, nprobe=1)
    assert all(0 < len(row) < 1000 for row in hits)  # one list holds fewer than k: no padding rows
    assert all(len({p.id for p, _ in row}) == len(row) for row in hits)
