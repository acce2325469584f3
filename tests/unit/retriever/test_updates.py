import hashlib
from pathlib import Path

import numpy as np
import pytest

from services.core.catalog import Product
from services.core.errors import ConfigError, InvalidInput
from services.core.index_layout import CURRENT
from services.retriever.config import RetrieverSettings
from services.retriever.index import IndexSpec, ProductIndex, build_index, load_index, save_index
from services.retriever.updates import add_products, apply_update, remove_products
from tests.unit.retriever.vectors import clustered, products

SPECS = [IndexSpec("flat"), IndexSpec("hnsw", 16, 100), IndexSpec("ivf_flat", nlist=16)]


class TextHashEncoder:
    """Deterministic stand-in for MiniLM (wiring only): a text's vector is seeded by its hash."""

    fingerprint = "text-hash:1"
    dim = 32

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = [
            np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8])).normal(
                size=self.dim
            )
            for t in texts
        ]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exhaustive(index: ProductIndex, vectors: np.ndarray, k: int) -> list[list[str]]:
    """Search wide enough that every approximate index is exact on these sizes."""
    return [[p.id for p, _ in hits] for hits in index.search(vectors, k, ef_search=512, nprobe=1000)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_removed_products_never_come_back_and_every_other_id_still_maps_to_its_vector(
    spec: IndexSpec,
) -> None:
    vectors = clustered(2000)
    base = build_index(products(2000), vectors, spec, "enc", "sha")
    removed = [f"P{i}" for i in range(0, 2000, 7)]
    updated = apply_update(base, [], np.zeros((0, 32), np.float32), removed, {"op": "remove"})

    assert len(updated.products) == 2000 - len(removed) and updated.version != base.version
    kept_rows = [i for i in range(2000) if i % 7]
    top1 = [hits[0] for hits in exhaustive(updated, vectors[kept_rows], 1)]
    assert top1 == [f"P{i}" for i in kept_rows]  # row <-> id mapping survives the removal
    everything = exhaustive(updated, vectors[:20], len(updated.products))
    assert not set(removed) & {i for hits in everything for i in hits}
    assert len(base.products) == 2000 and exhaustive(base, vectors[:1], 1) == [["P0"]]  # base untouched


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_added_and_replaced_products_are_found_by_their_new_vectors(spec: IndexSpec) -> None:
    vectors = clustered(2000)
    base = build_index(products(2000), vectors, spec, "enc", "sha")
    fresh = clustered(3, seed=9)
    upserts = [Product("NEW1", "new one"), Product("NEW2", "new two"), Product("P5", "product 5, new title")]
    updated = apply_update(base, upserts, fresh, [], {"op": "add"})

    assert len(updated.products) == 2002
    assert [hits[0] for hits in exhaustive(updated, fresh, 1)] == ["NEW1", "NEW2", "P5"]
    assert [p.title for p in updated.products if p.id == "P5"] == ["product 5, new title"]
    assert exhaustive(updated, vectors[[6, 7]], 1) == [["P6"], ["P7"]]


def test_hnsw_removals_are_tombstones_that_survive_save_and_load(tmp_path: Path) -> None:
    vectors = clustered(1000)
    base = build_index(products(1000), vectors, IndexSpec("hnsw", 16, 100), "enc", "sha")
    updated = apply_update(base, [], np.zeros((0, 32), np.float32), ["P3", "P4"], {"op": "remove"})
    save_index(updated, tmp_path)
    loaded = load_index(tmp_path, "enc")

    assert loaded.index.ntotal == 1000 and loaded.tombstones.tolist() == [3, 4]
    hits = {i for row in exhaustive(loaded, vectors[[3, 4]], 50) for i in row}
    assert "P3" not in hits and "P4" not in hits and len(hits) > 0


def test_hnsw_refuses_more_tombstones_than_it_can_carry_and_says_to_rebuild() -> None:
    base = build_index(products(100), clustered(100), IndexSpec("hnsw", 16, 100), "enc", "sha")
    with pytest.raises(ConfigError, match="synth index build"):
        apply_update(base, [], np.zeros((0, 32), np.float32), [f"P{i}" for i in range(30)], {"op": "remove"})


def test_removing_every_product_is_refused() -> None:
    base = build_index(products(3), clustered(3), IndexSpec("flat"), "enc", "sha")
    with pytest.raises(InvalidInput, match="remove every product"):
        apply_update(base, [], np.zeros((0, 32), np.float32), ["P0", "P1", "P2"], {"op": "remove"})


@pytest.fixture
def settings(tmp_path: Path) -> RetrieverSettings:
    settings = RetrieverSettings(state_dir=tmp_path)
    save_index(
        build_index(products(50), clustered(50), IndexSpec("flat"), "text-hash:1", "sha"), settings.index_root
    )
    return settings


def test_remove_counts_unknown_duplicate_and_blank_lines_and_publishes_a_new_version(
    settings: RetrieverSettings, tmp_path: Path
) -> None:
    before = (settings.index_root / CURRENT).read_text()
    ids = tmp_path / "ids.txt"
    ids.write_text("P1\nP2\n\nP1\nNOPE\nP3\n  \nALSO-NOPE\n")
    report = remove_products(settings, ids)

    assert (report.removed, report.duplicates, report.blank_lines) == (3, 1, 2)
    assert report.unknown == ["NOPE", "ALSO-NOPE"]
    assert (settings.index_root / CURRENT).read_text() == report.version != before
    loaded = load_index(settings.index_root, "text-hash:1")
    assert {"P1", "P2", "P3"}.isdisjoint(p.id for p in loaded.products) and len(loaded.products) == 47
    assert loaded.manifest["parent"] == before and loaded.manifest["updates"][-1]["removed"] == 3
    assert "unknown ids 2 (NOPE, ALSO-NOPE)" in report.summary()


def test_remove_with_only_unknown_ids_publishes_nothing(settings: RetrieverSettings, tmp_path: Path) -> None:
    before = (settings.index_root / CURRENT).read_text()
    ids = tmp_path / "ids.txt"
    ids.write_text("X1\nX2\n")
    report = remove_products(settings, ids)
    assert report.version is None and report.unknown == ["X1", "X2"]
    assert (settings.index_root / CURRENT).read_text() == before
    assert "nothing changed" in report.summary()


@pytest.mark.parametrize(
    ("content", "message"), [(None, "does not exist"), (b"P1\nP2\n\xff\xfe\n", "line 3: not valid UTF-8")]
)
def test_bad_id_files_are_invalid_input(
    settings: RetrieverSettings, tmp_path: Path, content: bytes | None, message: str
) -> None:
    ids = tmp_path / "ids.txt"
    if content is not None:
        ids.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        remove_products(settings, ids)


def test_add_counts_new_replaced_and_unchanged_products(settings: RetrieverSettings, tmp_path: Path) -> None:
    catalog = tmp_path / "more.csv"
    catalog.write_text("id,title\nP1,product 1\nP2,product 2 (new edition)\nN1,a brand new thing\n")
    encoder = TextHashEncoder()
    report = add_products(settings, catalog, encoder)  # type: ignore[arg-type]

    assert (report.added, report.replaced, report.unchanged) == (1, 1, 1)
    loaded = load_index(settings.index_root, encoder.fingerprint)
    assert loaded.version == report.version and len(loaded.products) == 51
    new_vectors = encoder.encode(
        [Product(i, t).text() for i, t in [("N1", "a brand new thing"), ("P2", "product 2 (new edition)")]]
    )
    assert [hits[0][0].id for hits in loaded.search(new_vectors, 1)] == ["N1", "P2"]

    again = add_products(settings, catalog, encoder)  # type: ignore[arg-type]
    assert again.version is None and again.unchanged == 3


def test_cli_remove_reports_counts_and_a_missing_file_without_a_traceback(
    settings: RetrieverSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from services.cli.main import main

    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(settings.state_dir))
    ids = tmp_path / "ids.txt"
    ids.write_text("P1\nP1\nGHOST\n")
    assert main(["index", "remove", "--ids", str(ids)]) == 0
    assert "removed 1, duplicate lines 1, unknown ids 1 (GHOST)" in capsys.readouterr().out
    assert main(["index", "remove", "--ids", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt does not exist" in capsys.readouterr().err


def test_ivf_pq_removes_vectors_for_real() -> None:
    vectors = clustered(3000)
    spec = IndexSpec("ivf_pq", nlist=16, pq_m=8, pq_nbits=6)
    base = build_index(products(3000), vectors, spec, "enc", "sha")
    removed = [f"P{i}" for i in range(0, 3000, 5)]
    updated = apply_update(base, [], np.zeros((0, 32), np.float32), removed, {"op": "remove"})
    assert updated.index.ntotal == 2400 and len(updated.products) == 2400 and len(updated.tombstones) == 0
    found = {i for row in exhaustive(updated, vectors[:50], 100) for i in row}
    assert found and not found & set(removed)


def test_an_index_of_the_previous_format_is_not_updated_in_place() -> None:
    base = build_index(products(10), clustered(10), IndexSpec("hnsw", 8, 40), "enc", "sha")
    base.manifest["format"] = 1
    with pytest.raises(ConfigError, match="format 1.*rebuild it once"):
        apply_update(base, [], np.zeros((0, 32), np.float32), ["P1"], {"op": "remove"})


def test_add_on_a_shard_skips_and_counts_products_of_other_shards(tmp_path: Path) -> None:
    from services.retriever import shards

    settings = RetrieverSettings(state_dir=tmp_path, shard="0/2")
    mine = shards.select(products(40), settings.shard_spec)
    built = build_index(mine, clustered(len(mine)), IndexSpec("flat"), "text-hash:1", "sha")
    shards.record(built.manifest, settings.shard_spec)
    save_index(built, settings.index_root)
    new = [f"N{i}" for i in range(20)]
    (tmp_path / "more.csv").write_text("id,title\n" + "".join(f"{i},thing {i}\n" for i in new))

    report = add_products(settings, tmp_path / "more.csv", TextHashEncoder())  # type: ignore[arg-type]
    in_shard = [i for i in new if settings.shard_spec.holds(i)]
    assert 0 < len(in_shard) < len(new)  # the ids really fall on both shards
    assert (report.added, report.other_shard) == (len(in_shard), len(new) - len(in_shard))
    served = {p.id for p in load_index(settings.index_root, "text-hash:1").products}
    assert set(in_shard) <= served and not (set(new) - set(in_shard)) & served
