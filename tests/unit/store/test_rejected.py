"""The rewrites record keeps the synthesis's hardest judge-rejected pairs; older files still load."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.pipeline.models import DroppedCandidate, SynthesisResult
from services.store.preferences import export_preferences, read_records
from services.store.sink import REWRITES_SCHEMA, _row, write_parquet_durably
from services.store.stream import MAX_REJECTED, REWRITES, stream_entries
from tests.results import pair, result


def synthesis(query: str, rejected: int) -> SynthesisResult:
    pairs = [pair(query, "A1", 0.95, True, title="Title A1")] + [
        pair(query, f"R{i:02d}", i / 100, False, title=f"Title R{i:02d}") for i in range(rejected)
    ]
    return result(
        query,
        pairs,
        dropped_candidates=[DroppedCandidate(text=query, reason="copy_of_query")],
        pipeline_version="v1",
    )


def test_the_rewrites_record_lists_the_highest_scoring_rejected_pairs_capped() -> None:
    entries = stream_entries(synthesis("deck over", rejected=14))
    record = next(e for e in entries if e.get("kind") == REWRITES)
    rejected = json.loads(record["rejected"])
    assert len(rejected) == MAX_REJECTED == 10
    assert [r["product_id"] for r in rejected[:2]] == ["R13", "R12"]  # highest score first
    assert rejected[0] == {"product_id": "R13", "title": "Title R13", "score": 0.13}
    assert "A1" not in {r["product_id"] for r in rejected}  # accepted pairs are not negatives
    assert [e["product_id"] for e in entries if "pair_id" in e] == ["A1"]


def test_the_column_is_stored_and_old_files_without_it_still_export(tmp_path: Path) -> None:
    entries = stream_entries(synthesis("deck over", rejected=2))
    record = next(e for e in entries if e.get("kind") == REWRITES)
    new_row = _row("2-0", record)
    assert json.loads(str(new_row["rejected"]))[0]["product_id"] == "R01"
    old_entry = {k: v for k, v in record.items() if k != "rejected"}  # spooled before the column
    assert _row("1-0", old_entry)["rejected"] == ""
    store = tmp_path / "store"
    write_parquet_durably(store, [new_row], "rewrites", REWRITES_SCHEMA)
    assert "rejected" in pq.read_schema(next(store.glob("rewrites-*.parquet"))).names
    # A file written before the column existed.
    old_schema = pa.schema([f for f in REWRITES_SCHEMA if f.name != "rejected"])
    old = {k: v for k, v in _row("1-0", old_entry).items() if k != "rejected"}
    pq.write_table(
        pa.Table.from_pylist([old], schema=old_schema), store / "rewrites-00000000T000000-1_0.parquet"
    )

    records, skipped = read_records(store)
    assert (len(records), skipped) == (2, 0)
    summary = export_preferences(store, tmp_path / "prefs.jsonl")
    assert summary.records == 2 and summary.rows == 2
