"""The source of a synthesized query (origin) travels with its pairs and rewrites record into the store;
entries, files and cache keys from before the column stay as they were and keep loading."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.lab.retriever.data import load_training_data
from services.pipeline.ids import cache_key, pair_id
from services.pipeline.models import Pair, QueryItem, Rewards, Rewrite, SynthesisResult
from services.store.preferences import export_preferences
from services.store.sink import REWRITES_SCHEMA, SCHEMA, _row, parquet_schema, write_parquet_durably
from services.store.stream import (
    PAIR_COLUMNS,
    REWRITES,
    REWRITES_COLUMNS,
    is_pair,
    rewrites_record_id,
    stream_entries,
)

ORIGIN = "product:P-1:keywords"


def result(query: str = "t bar pull", origin: str = "") -> SynthesisResult:
    rewards = Rewards(
        intent=0.9, product_relevance=0.8, relevance=0.85, increment=0, alignment=1, diversity=0
    )
    rewrites = [
        Rewrite(
            text=t,
            source="llm:hf",
            accepted=True,
            reason="ok",
            rewards=rewards,
            reward=r,
            rank=i + 1,
            retrieved=1,
        )
        for i, (t, r) in enumerate([("cabinet pull", 0.9), ("drawer handle", 0.5)])
    ]
    pairs = [
        Pair(pair_id=pair_id(query, "P-1"), product_id="P-1", title="T-Bar Pull", score=0.9, label="exact",
             accepted=True, reason="round trip", retrieved_by=[query], found_by_query=True, retrieval_score=0.8),
        Pair(pair_id=pair_id(query, "P-2"), product_id="P-2", title="Cup Pull", score=0.2, label="irrelevant",
             accepted=False, reason="low", retrieved_by=[query], found_by_query=True, retrieval_score=0.5),
    ]  # fmt: skip
    return SynthesisResult(
        query=query, rewrites=rewrites, dropped_candidates=[], pairs=pairs, accepted_count=1,
        timings_ms={}, pipeline_version="v1", origin=origin,
    )  # fmt: skip


def test_every_entry_of_a_generated_query_names_its_product_and_style() -> None:
    entries = stream_entries(result(origin=ORIGIN))
    assert [e.get("kind", "pair") for e in entries] == ["pair", REWRITES]
    assert all(e["origin"] == ORIGIN for e in entries)
    assert "origin" in [c.name for c in PAIR_COLUMNS] and "origin" in [c.name for c in REWRITES_COLUMNS]
    assert SCHEMA.field("origin").type == pa.string() and REWRITES_SCHEMA.field("origin").type == pa.string()


def test_a_logged_query_keeps_its_record_id_and_cache_key() -> None:
    logged = next(e for e in stream_entries(result()) if not is_pair(e))
    assert logged["origin"] == ""
    assert logged["record_id"] == rewrites_record_id("t bar pull", "v1", logged["rewrites"])
    generated = next(e for e in stream_entries(result(origin=ORIGIN)) if not is_pair(e))
    assert generated["record_id"] != logged["record_id"]  # two products' record of one query: two records
    assert cache_key("deck over", 4, 20, "v1") == cache_key("deck over", 4, 20, "v1", "query")
    assert cache_key("deck over", 4, 20, "v1") != cache_key("deck over", 4, 20, "v1", ORIGIN)


def test_an_entry_spooled_before_the_column_reads_it_empty() -> None:
    for entry in stream_entries(result(origin=ORIGIN)):
        old = {k: v for k, v in entry.items() if k != "origin"}
        assert _row("1-0", old)["origin"] == ""


def test_a_query_item_takes_only_known_origins() -> None:
    assert QueryItem(query="deck over").origin == ""
    assert QueryItem(query="deck over", origin=ORIGIN).origin == ORIGIN
    for bad in ["product:P-1", "shopping", "product:P 1:keywords", "product::keywords"]:
        try:
            QueryItem(query="deck over", origin=bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def _old_file(store: Path, prefix: str, entry: dict[str, str], columns: tuple) -> None:  # type: ignore[type-arg]
    """A store file as the sink wrote it before the origin column."""
    old_columns = tuple(c for c in columns if c.name != "origin")
    row = {k: v for k, v in _row("1-0", entry).items() if k != "origin"}
    store.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pylist([row], schema=parquet_schema(old_columns)), store / f"{prefix}-old.parquet"
    )


def test_old_and_new_store_files_load_together(tmp_path: Path) -> None:
    store = tmp_path / "store"
    old = stream_entries(result("deck over"))
    _old_file(store, "pairs", old[0], PAIR_COLUMNS)
    _old_file(store, "rewrites", old[1], REWRITES_COLUMNS)
    new = stream_entries(result(origin=ORIGIN))
    write_parquet_durably(store, [_row("2-0", new[0])], "pairs", SCHEMA)
    write_parquet_durably(store, [_row("2-1", new[1])], "rewrites", REWRITES_SCHEMA)

    data = load_training_data(store)
    assert sorted(e.query for e in data.examples) == ["deck over", "t bar pull"]
    summary = export_preferences(store, tmp_path / "prefs.jsonl")
    assert summary.records == 2
    rows = [json.loads(line) for line in (tmp_path / "prefs.jsonl").read_text().splitlines()]
    assert sorted(r["origin"] for r in rows) == ["", ORIGIN]
    flat = export_preferences(store, tmp_path / "flat.jsonl", flat=True)
    assert flat.rows == 2
    assert {json.loads(line)["origin"] for line in (tmp_path / "flat.jsonl").read_text().splitlines()} == {
        "",
        ORIGIN,
    }
