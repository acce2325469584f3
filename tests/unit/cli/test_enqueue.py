"""Query files for `synth enqueue`: every format, bad lines reported with their line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.enqueue import read_queries
from services.core.errors import InvalidInput


def test_plain_text_one_query_per_line(tmp_path: Path) -> None:
    path = tmp_path / "queries.txt"
    path.write_bytes(b"deck over\n\n  cordless   drill \n\xff\xfe broken\n" + b"x" * 600 + b"\n")
    found = read_queries(path, num_rewrites=2, top_k=7)
    assert [(i.query, i.num_rewrites, i.top_k) for i in found.items] == [
        ("deck over", 2, 7),
        ("cordless drill", 2, 7),
    ]
    assert found.problems[0] == "line 4: not valid UTF-8"
    assert found.problems[1].startswith("line 5: query: ") and "512" in found.problems[1]


def test_jsonl_with_per_line_parameters(tmp_path: Path) -> None:
    path = tmp_path / "queries.jsonl"
    path.write_text(
        '{"query": "bath thermometer", "top_k": 5}\n"salon chair"\n{"query": ""}\n{oops\n[1]\n'
        '{"query": "a", "colour": "red"}\n'
    )
    found = read_queries(path, num_rewrites=4, top_k=20)
    assert [(i.query, i.top_k) for i in found.items] == [("bath thermometer", 5), ("salon chair", 20)]
    assert [p.split(":")[0] for p in found.problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert "not JSON" in found.problems[1] and "Extra inputs" in found.problems[3]


def test_tsv_with_a_query_column(tmp_path: Path) -> None:
    path = tmp_path / "wands.tsv"
    path.write_text("query_id\tquery\tquery_class\n0\tsalon chair\tMassage Chairs\n1\n2\t \tX\n")
    found = read_queries(path, num_rewrites=4, top_k=20)
    assert [i.query for i in found.items] == ["salon chair"]
    assert found.problems[0].startswith("line 3: 1 columns") and found.problems[1].startswith("line 4:")


def test_csv_without_a_query_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,title\n1,drill\n")
    with pytest.raises(InvalidInput, match="no query column"):
        read_queries(path, 4, 20)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        read_queries(tmp_path / "absent.txt", 4, 20)
