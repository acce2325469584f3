"""`synth synthesize`'s journal: what a re-run skips, and the lines it can and cannot read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.journal import (
    JournalEntry,
    append,
    default_journal,
    done_under,
    open_journal,
    parse_journal,
    plan,
    read_journal,
)
from services.cli.synthesize import Tally, progress_line, run_synthesize
from services.core.errors import InvalidInput
from services.pipeline.models import QueryItem


def entry(query: str, version: str = "v2", status: int = 200, top_k: int = 20) -> JournalEntry:
    return JournalEntry(query=query, num_rewrites=4, top_k=top_k, pipeline_version=version, status=status)


def test_only_successes_under_the_current_version_count_as_done() -> None:
    entries = [
        entry("deck over"),
        entry("salon chair", version="v1"),  # an older pipeline: done again
        entry("bath mat", status=502),  # failed: done again
        entry("drill", top_k=5),  # other parameters: a different synthesis
    ]
    assert done_under(entries, "v2") == {("deck over", 4, 20), ("drill", 4, 5)}
    assert done_under(entries, "v1") == {("salon chair", 4, 20)}


def test_plan_skips_done_queries_and_repeats_and_keeps_file_order() -> None:
    items = [QueryItem(query=q) for q in ["deck over", "salon chair", "bath mat", "salon chair"]]
    todo, skipped = plan(items, {("deck over", 4, 20)})
    assert [i.query for i in todo] == ["salon chair", "bath mat"]
    assert skipped == 2
    other = [QueryItem(query="deck over", top_k=5)]
    assert plan(other, {("deck over", 4, 20)}) == (other, 0)


def test_unreadable_and_cut_short_lines_are_ignored() -> None:
    good = entry("deck over").model_dump_json()
    lines = [good, "", "not json", '{"query": "no version"}', good[: len(good) // 2]]
    assert [e.query for e in parse_journal(lines)] == ["deck over"]


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "journal.jsonl"
    assert read_journal(path) == []
    with open_journal(path) as handle:
        append(handle, entry("deck over"))
    with path.open("a") as handle:
        handle.write('{"query": "salon ch')  # killed mid-write
    with open_journal(path) as handle:
        append(handle, entry("bath mat"))
    assert [e.query for e in read_journal(path)] == ["deck over", "bath mat"]


def test_default_journal_is_per_queries_file_under_the_state_dir(tmp_path: Path) -> None:
    first = default_journal(tmp_path / "state", tmp_path / "a" / "log.csv")
    assert first.parent == tmp_path / "state" / "synthesize" and first.name.startswith("log-")
    assert first.suffix == ".jsonl"
    assert first != default_journal(tmp_path / "state", tmp_path / "b" / "log.csv")
    assert first == default_journal(tmp_path / "state", tmp_path / "a" / ".." / "a" / "log.csv")


def test_tally_and_progress_line() -> None:
    tally = Tally(total=4, skipped=3)
    tally.add(entry("deck over").model_copy(update={"accepted": 5, "new": 4, "duplicates": 1}))
    tally.add(entry("bath mat", status=422))
    assert (tally.done, tally.failed, tally.accepted, tally.new, tally.duplicates) == (1, 1, 5, 4, 1)
    line = progress_line(tally, width=8)
    assert line.startswith("[####....] 2/4 · 5 accepted · 1 failed · 3 skipped · ")
    assert "ETA " in line and "q/s" in line


def test_an_address_without_a_scheme_is_refused_before_any_request(tmp_path: Path) -> None:
    queries = tmp_path / "log.txt"
    queries.write_text("deck over\n")
    with pytest.raises(InvalidInput, match="http:// or https://"):
        run_synthesize("localhost:8000", queries, tmp_path / "journal.jsonl", 4, 20)
    assert not (tmp_path / "journal.jsonl").exists()
