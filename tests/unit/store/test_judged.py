"""Every judged pair of a synthesis, with each judge's score, reaches the store; schemas follow the columns."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from services.pipeline.ids import pair_id
from services.pipeline.models import DroppedCandidate, Pair, SynthesisResult
from services.store.sink import REWRITES_SCHEMA, SCHEMA, _row, write_parquet_durably
from services.store.stream import PAIR_COLUMNS, REWRITES, REWRITES_COLUMNS, stream_entries


def pair(pid: str, score: float, accepted: bool) -> Pair:
    return Pair(
        pair_id=pair_id("deck over", pid), product_id=pid, title=f"Title {pid}", score=score,
        label="exact" if accepted else "irrelevant", accepted=accepted, reason="r",
        judges={"embedding": score, "cross_encoder": round(1 - score, 2)}, retrieved_by=["deck over"],
        found_by_query=pid != "R3", retrieval_score=0.5,
    )  # fmt: skip


def result() -> SynthesisResult:
    pairs = [pair("A1", 0.9, True)] + [pair(f"R{i}", i / 10, False) for i in range(15)]
    return SynthesisResult(
        query="deck over", rewrites=[], dropped_candidates=[DroppedCandidate(text="deck over", reason="copy_of_query")], pairs=pairs, accepted_count=1,
        timings_ms={"total": 1.0}, pipeline_version="v1", judge_version="embedding:x|cross_encoder:y|all",
    )  # fmt: skip


def test_the_rewrites_record_holds_every_judged_pair_with_each_judges_score(tmp_path: Path) -> None:
    entries = stream_entries(result())
    record = next(e for e in entries if e.get("kind") == REWRITES)
    judged = json.loads(record["judged"])
    assert len(judged) == 16  # not capped like `rejected`
    assert {j["product_id"] for j in judged} == {"A1", *(f"R{i}" for i in range(15))}
    first = next(j for j in judged if j["product_id"] == "R3")
    assert first["judges"] == {"embedding": 0.3, "cross_encoder": 0.7}
    assert first["accepted"] is False and first["found_by_query"] is False
    assert record["judge_version"] == "embedding:x|cross_encoder:y|all"
    accepted = next(e for e in entries if e.get("pair_id"))
    assert json.loads(accepted["judges"]) == {"embedding": 0.9, "cross_encoder": 0.1}

    store = tmp_path / "store"
    write_parquet_durably(store, [_row("1-0", record)], "rewrites", REWRITES_SCHEMA)
    write_parquet_durably(store, [_row("1-1", accepted)], "pairs", SCHEMA)
    rows = pq.read_table(next(store.glob("rewrites-*.parquet"))).to_pylist()
    assert json.loads(rows[0]["judged"]) == judged
    assert json.loads(pq.read_table(next(store.glob("pairs-*.parquet"))).to_pylist()[0]["judges"])


def test_the_parquet_schemas_are_the_stream_columns_plus_the_stream_id() -> None:
    assert SCHEMA.names == [c.name for c in PAIR_COLUMNS] + ["stream_id"]
    assert REWRITES_SCHEMA.names == [c.name for c in REWRITES_COLUMNS] + ["stream_id"]
    assert str(SCHEMA.field("score").type) == "float" and str(SCHEMA.field("created_at").type) == "double"


def test_an_entry_spooled_before_the_new_columns_reads_them_empty() -> None:
    record = next(e for e in stream_entries(result()) if e.get("kind") == REWRITES)
    old = {k: v for k, v in record.items() if k not in ("judged", "judge_version")}
    row = _row("1-0", old)
    assert row["judged"] == "" and row["judge_version"] == ""
