import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from catalog_samples import CSV, DRILL_TITLES, PRODUCTS

from services.core.errors import ConfigError
from services.retriever.index import IndexSpec, build_index, save_index
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import ENGINES, RewriteInput
from services.rewriter.engines.catalog import CatalogEngine


async def inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def engine(**settings: Any) -> CatalogEngine:
    return CatalogEngine(RewriterSettings(**settings), inline)


@pytest.fixture
def catalog_csv(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text(CSV)
    return path


async def test_registered_and_loads_from_a_csv_catalog(catalog_csv: Path) -> None:
    assert ENGINES.get("catalog") is CatalogEngine
    loaded = engine(catalog=catalog_csv)
    assert loaded.version == "unloaded"
    await loaded.start()
    assert loaded.version.startswith("catalog-v1:")
    assert f"n={len(PRODUCTS)}" in loaded.version
    proposal = await loaded.propose(RewriteInput("cordles dril", n=1))
    assert [(c.text, c.source) for c in proposal.candidates] == [("cordless drill", "catalog:spell")]


async def test_loads_the_current_index_products_when_no_catalog_is_set(tmp_path: Path) -> None:
    vectors = np.eye(len(PRODUCTS), 8, dtype=np.float32)
    built = build_index(PRODUCTS, vectors, IndexSpec("flat"), "test-encoder", "0" * 64)
    save_index(built, tmp_path / "state" / "index")  # the retriever's own writer: CURRENT -> version dir
    from_state = engine(state_dir=tmp_path / "state")
    await from_state.start()
    from_dir = engine(state_dir=tmp_path / "empty", catalog_index_dir=tmp_path / "state" / "index")
    await from_dir.start()
    assert from_state.version == from_dir.version
    proposal = await from_dir.propose(RewriteInput("turquoise velvet throw pillow", n=1))
    assert [(c.text, c.source) for c in proposal.candidates] == [("turquoise throw pillow", "catalog:relax")]


def test_a_missing_catalog_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TAILSYNTH_REWRITER_CATALOG=.*missing.csv"):
        engine(catalog=tmp_path / "missing.csv")
    with pytest.raises(
        ConfigError, match="TAILSYNTH_REWRITER_CATALOG .*TAILSYNTH_REWRITER_CATALOG_INDEX_DIR"
    ):
        engine(state_dir=tmp_path)  # no catalog and no index


async def test_a_broken_catalog_is_a_config_error_at_start(tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text(json.dumps({"id": "1", "title": "Drill"}) + "\n{not json\n")
    broken = engine(catalog=path)
    with pytest.raises(ConfigError, match="line 2: invalid JSON"):
        await broken.start()


async def test_version_follows_the_catalog_and_the_settings(tmp_path: Path, catalog_csv: Path) -> None:
    async def version(path: Path, **settings: Any) -> str:
        loaded = engine(catalog=path, **settings)
        await loaded.start()
        return loaded.version

    base = await version(catalog_csv)
    copy = tmp_path / "copy.csv"
    copy.write_text(CSV)
    assert await version(copy) == base  # same products, same version
    edited = tmp_path / "edited.csv"
    edited.write_text(CSV.replace("Glass Coffee Table", "Glass Console Table"))
    assert await version(edited) != base
    assert await version(catalog_csv, catalog_relax_min_matches=3) != base


async def test_every_kind_at_most_once_whatever_n_asks_and_within_the_cap(catalog_csv: Path) -> None:
    loaded = engine(catalog=catalog_csv)
    await loaded.start()
    request = RewriteInput("cordless drill kitt", n=1, feedback=DRILL_TITLES)
    proposal = await loaded.propose(request)
    # n=1 is the LLM's budget: the catalog engine still gives one candidate per kind.
    assert [(c.text, c.source) for c in proposal.candidates] == [
        ("cordless drill", "catalog:relax"),
        ("cordless drill kit", "catalog:spell"),
    ]
    # PRF (the titles confirm the corrected "kit") came to the spelling's candidate: dropped as such.
    assert [(d.text, d.reason) for d in proposal.dropped] == [
        ("cordless drill kit", "duplicate (catalog:prf)")
    ]

    capped = engine(catalog=catalog_csv, catalog_max_candidates=1)
    await capped.start()
    proposal = await capped.propose(request)
    assert [c.source for c in proposal.candidates] == ["catalog:relax"]
    assert ("cordless drill kit", "over_cap (catalog:spell)") in [
        (d.text, d.reason) for d in proposal.dropped
    ]


async def test_prf_and_proposals_are_deterministic(catalog_csv: Path) -> None:
    loaded = engine(catalog=catalog_csv)
    await loaded.start()
    request = RewriteInput("drill", n=4, feedback=DRILL_TITLES)
    first = await loaded.propose(request)
    assert [(c.text, c.source) for c in first.candidates] == [("cordless drill", "catalog:prf")]
    assert await loaded.propose(request) == first
    assert (await loaded.propose(RewriteInput("drill", n=4))).candidates == []


@pytest.mark.parametrize(
    "query", ["🔥🔥🔥", "x" * 500, "беспроводная дрель", "電動ドリル", " ".join(["cordles dril"] * 40)]
)
async def test_garbage_never_raises_and_never_copies_the_query(catalog_csv: Path, query: str) -> None:
    loaded = engine(catalog=catalog_csv)
    await loaded.start()
    proposal = await loaded.propose(RewriteInput(query, n=4, feedback=("", "🙂", *DRILL_TITLES)))
    assert len(proposal.candidates) <= 3
    for candidate in proposal.candidates:
        assert candidate.text != query and len(candidate.text) <= 96 and len(candidate.text.split()) <= 12
