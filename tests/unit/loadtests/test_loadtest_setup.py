"""Query files, response checks and the runner's options (nothing here imports locust)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtests.common import (
    HOT_QUERIES,
    QueriesFileError,
    load_queries,
    payload,
    problem_with_batch,
    problem_with_result,
)
from loadtests.run_headless import SCENARIOS, build_scenarios, locust_command, parse_args


def test_queries_from_a_wands_tsv(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text(
        "query_id\tquery\tquery_class\n0\tsalon chair\tChairs\n1\n2\t \tX\n3\tSalon Chair\tChairs\n"
        f"4\t{HOT_QUERIES[0].upper()}\tSofas\n5\tturquoise pillows\n"
    )
    # Header, short and blank rows skipped; duplicates (any case) and hot queries left out.
    assert load_queries(path) == ["salon chair", "turquoise pillows"]


def test_missing_or_empty_query_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(QueriesFileError, match="not found"):
        load_queries(tmp_path / "none.tsv")
    empty = tmp_path / "empty.tsv"
    empty.write_text("query_id\tquery\tquery_class\n")
    with pytest.raises(QueriesFileError, match="no queries"):
        load_queries(empty)


def test_payload_matches_the_api() -> None:
    assert payload("sofa") == {"query": "sofa", "num_rewrites": 4, "top_k": 20, "use_cache": True}
    assert payload("sofa", use_cache=False)["use_cache"] is False


def _result(cached: bool) -> dict[str, Any]:
    return {"query": "q", "cached": cached, "pairs": [], "rewrites": ["a"]}


def test_result_checks() -> None:
    assert problem_with_result(_result(False), cached=False) is None
    assert problem_with_result(_result(True), cached=False) == "cached is True, expected False"
    assert problem_with_result({"cached": False, "rewrites": []}, cached=False) is not None
    assert problem_with_result(None, cached=True) is not None


def test_batch_checks() -> None:
    ok = {"results": [{"index": 0, "status": 200, "result": _result(True)},
                      {"index": 1, "status": 200, "result": _result(False)}], "succeeded": 2, "failed": 0}  # fmt: skip
    assert problem_with_batch(ok, [True, False]) is None
    assert "query 1: cached is False" in (problem_with_batch(ok, [True, True]) or "")
    failed = {
        "results": [{"index": 0, "status": 200, "result": _result(True)},
                    {"index": 1, "status": 504, "result": None, "error": "deadline"}],
        "succeeded": 1, "failed": 1,
    }  # fmt: skip
    assert problem_with_batch(failed, [True, False]) == "1 of 2 queries succeeded, 1 failed"
    assert problem_with_batch({"detail": "x"}, [True]) == "no results list"
    assert problem_with_batch(ok, [True]) is not None  # one result too many


def test_default_options_run_every_scenario() -> None:
    args = parse_args([])
    assert args.host is None and args.scenarios == list(SCENARIOS)
    scenarios = {s.name: s for s in build_scenarios(args)}
    assert (scenarios["cache_hit"].users, scenarios["baseline"].users) == (64, 64)
    assert (scenarios["cold_sequential"].users, scenarios["cold_concurrent"].users) == (1, 16)
    assert scenarios["cold_concurrent"].run_time_s == 90 and scenarios["cache_hit"].run_time_s == 30
    assert scenarios["cache_hit"].load == "64 users, 1 request / 0.5 s each (128 req/s)"


def test_options_shape_the_scenarios() -> None:
    args = parse_args(["--scenarios", "cold_concurrent,cache_hit", "--cold-time", "2m", "--cold-users", "8"])
    scenarios = build_scenarios(args)
    assert [s.name for s in scenarios] == ["cache_hit", "cold_concurrent"]  # always in the fixed order
    assert (scenarios[1].users, scenarios[1].run_time_s) == (8, 120)


@pytest.mark.parametrize(
    "argv",
    [["--scenarios", "cache_hit,warm"], ["--scenarios", ","], ["--hot-users", "0"], ["--cold-time", "soon"],
     ["--queries-file", "/nonexistent/q.tsv"], ["--hot-pacing", "0"]],
)  # fmt: skip
def test_bad_options_exit_with_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_locust_command_runs_one_user_class_headless(tmp_path: Path) -> None:
    args = parse_args(["--scenarios", "cold_concurrent"])
    scenario = build_scenarios(args)[0]
    command = locust_command(scenario, "http://127.0.0.1:9", tmp_path, args, seed=3, server_pid=42)
    assert command[-1] == "ColdUser"
    flags = dict(zip(command, command[1:], strict=False))
    assert flags["--users"] == "16" and flags["--run-time"] == "90s" and flags["--stop-timeout"] == "180"
    assert flags["--host"] == "http://127.0.0.1:9" and flags["--server-pid"] == "42"
    assert flags["--csv"] == str(tmp_path / "cold_concurrent") and flags["--fresh-seed"] == "3"
    assert "--headless" in command and "--only-summary" in command
