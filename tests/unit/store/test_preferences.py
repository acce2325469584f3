"""synth export preferences: shapes, formats and bad input (a store written without Redis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import main as synth_main
from services.store.preferences import export_preferences, preference_pairs
from services.store.sink import REWRITES_SCHEMA, write_parquet_durably


def candidate(text: str, reward: float) -> dict[str, object]:
    rewards = {"intent": 0.9, "product_relevance": 0.5, "relevance": 0.7, "increment": 0.0}
    return {
        "text": text,
        "source": "llm:hf",
        "accepted": True,
        "reason": "ok",
        "reward": reward,
        "rewards": rewards,
    }


def store(tmp_path: Path, records: list[tuple[str, object]]) -> Path:
    rows = [
        {
            "record_id": f"rewrites:{i}",
            "query": query,
            "rewrites": rewrites if isinstance(rewrites, str) else json.dumps(rewrites),
            "dropped": json.dumps([{"text": query, "reason": "copy_of_query"}]),
            "pipeline_version": "v1",
            "created_at": float(i),
            "stream_id": f"{i}-0",
        }
        for i, (query, rewrites) in enumerate(records)
    ]
    write_parquet_durably(tmp_path / "store", rows, "rewrites", REWRITES_SCHEMA)
    return tmp_path / "store"


def test_pairs_form_a_strict_partial_order_at_the_margin() -> None:
    ranked = [candidate("a", 0.9), candidate("b", 0.88), candidate("c", 0.5), candidate("d", 0.1)]
    pairs = {(p["chosen"], p["rejected"]) for p in preference_pairs(ranked, margin=0.05)}
    assert pairs == {("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")}
    assert all((y, x) not in pairs for x, y in pairs)  # antisymmetric


def test_unreadable_records_are_counted_and_skipped(tmp_path: Path) -> None:
    directory = store(
        tmp_path, [("deck over", [candidate("deck paint", 0.8), candidate("dek", 0.1)]), ("bad", "{not json")]
    )
    summary = export_preferences(directory, tmp_path / "out.jsonl")
    assert (summary.records, summary.skipped, summary.pairs) == (1, 1, 1)
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert row["dropped"] == [{"text": "deck over", "reason": "copy_of_query"}]
    assert row["ranking"][0]["reward_intent"] == 0.9


def test_the_cli_writes_the_file_and_refuses_bad_input_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = store(tmp_path, [("deck over", [candidate("deck paint", 0.8), candidate("dek", 0.1)])])
    out = tmp_path / "dpo.parquet"
    assert synth_main(["export", "preferences", "--store", str(directory), "--out", str(out), "--flat"]) == 0
    assert "1 chosen/rejected pairs over 1 queries" in capsys.readouterr().out
    assert out.is_file()

    assert (
        synth_main(["export", "preferences", "--store", str(directory), "--out", str(tmp_path / "x.csv")])
        == 2
    )
    assert "--format" in capsys.readouterr().err
    assert synth_main(["export", "preferences", "--store", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no training store" in capsys.readouterr().err
    assert (
        synth_main(["export", "preferences", "--store", str(directory), "--out", str(out), "--margin", "2"])
        == 2
    )
