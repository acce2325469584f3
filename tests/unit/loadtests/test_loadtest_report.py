"""Threshold checks and the markdown + JSON report."""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.report import Check, Thresholds, evaluate, render, write
from loadtests.results import Result, Scenario


def _result(
    name: str,
    users: int,
    p50: float | None = 2.0,
    p99: float | None = 8.0,
    throughput: float = 100.0,
    requests: int = 1000,
    failures: int = 0,
    failure_examples: list[tuple[str, int]] | None = None,
) -> Result:
    scenario = Scenario(name, "User", users, 30, "gateway", f"{users} users")
    return Result(
        scenario, requests, failures, p50, p50, p99, p99, throughput, failure_examples=failure_examples or []
    )


def _passing() -> dict[str, Result]:
    return {
        "baseline": _result("baseline", 64, p50=2.0, p99=6.0),
        "cache_hit": _result("cache_hit", 64, p50=4.0, p99=10.0),
        "cold_sequential": _result("cold_sequential", 1, p50=3500, p99=4000, throughput=0.25, requests=25),
        "cold_concurrent": _result("cold_concurrent", 16, p50=9000, p99=9900, throughput=0.75, requests=80),
        "batch": _result("batch", 2, p50=8000, p99=9000, throughput=0.2, requests=100, failures=1),
    }


def _by_name(checks: list[Check]) -> dict[str, bool]:
    return {c.name.split(" (")[0].split(",")[0]: c.passed for c in checks}


def test_every_check_passes_at_its_limit() -> None:
    checks = evaluate(_passing())
    assert len(checks) == 3 + 5  # three targets and the failure ratio of each scenario
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_cache_hit_p50_over_twice_the_baseline_fails() -> None:
    results = _passing() | {"cache_hit": _result("cache_hit", 64, p50=4.1, p99=9.0)}
    checks = {c.name: c for c in evaluate(results)}
    ratio = next(c for name, c in checks.items() if name.startswith("cache-hit p50"))
    assert not ratio.passed and ratio.observed.startswith("2.05x")
    assert all(c.passed for name, c in checks.items() if not name.startswith("cache-hit p50"))


def test_cache_hit_p99_over_10_ms_fails_and_custom_limits_apply() -> None:
    results = _passing() | {"cache_hit": _result("cache_hit", 64, p50=3.0, p99=10.5)}
    assert not _by_name(evaluate(results))["cache-hit p99"]
    assert _by_name(evaluate(results, Thresholds(max_hit_p99_ms=11.0)))["cache-hit p99"]


def test_cold_speedup_under_three_fails_and_no_sequential_completion_fails() -> None:
    slow = _passing() | {"cold_concurrent": _result("cold_concurrent", 16, throughput=0.7)}
    assert not _by_name(evaluate(slow))["cold synthesis throughput"]
    stalled = _passing() | {"cold_sequential": _result("cold_sequential", 1, throughput=0.0)}
    check = next(c for c in evaluate(stalled) if c.name.startswith("cold synthesis"))
    assert not check.passed and "n/a" in check.observed


def test_failures_over_one_percent_fail_and_a_scenario_without_requests_fails() -> None:
    results = _passing() | {"batch": _result("batch", 2, requests=99, failures=2)}
    assert not _by_name(evaluate(results))["batch: failed requests"]
    results = _passing() | {"baseline": _result("baseline", 64, p50=None, p99=None, requests=0)}
    verdicts = _by_name(evaluate(results))
    assert (
        not verdicts["baseline: failed requests"]
        and not verdicts["cache-hit p50 vs raw FastAPI + Redis GET baseline p50"]
    )


def test_checks_of_scenarios_that_did_not_run_are_left_out() -> None:
    only_hits = {k: v for k, v in _passing().items() if k == "cache_hit"}
    checks = evaluate(only_hits)
    assert [c.name for c in checks] == ["cache-hit p99 (64 users)", "cache_hit: failed requests"]
    assert checks[0].observed == "10.00 ms"  # no baseline to compare with, no steal measured


def test_p99_check_shows_the_baseline_p99_and_steal() -> None:
    hit = _passing()["cache_hit"]
    results = _passing() | {
        "cache_hit": Result(hit.scenario, 1000, 0, 3.0, 20.0, 46.5, 80.0, 126.0, host_steal=0.16)
    }
    check = next(c for c in evaluate(results) if c.name.startswith("cache-hit p99"))
    assert not check.passed and check.observed == "46.50 ms (baseline 6.00 ms, steal 16%)"


def test_report_tables_and_json(tmp_path: Path) -> None:
    results = _passing() | {
        "batch": _result("batch", 2, requests=10, failures=5, failure_examples=[("HTTP 502: a|b\nc", 5)])
    }
    checks = evaluate(results)
    path = tmp_path / "reports" / "loadtest.md"
    write(path, results, checks, ["target: a test"])
    text = path.read_text()
    assert text.startswith("# tailsynth load test: FAIL")
    assert "- target: a test" in text
    assert "| cache_hit | 64 users | 30 | 1000 | 0 | 4.00 | 4.00 | 10.00 | 10.00 | 100.000 |" in text
    assert "| cold_sequential | 1 users | 30 | 25 | 0 | 3500 | 3500 | 4000 | 4000 | 0.250 |" in text
    assert "| batch | HTTP 502: a\\|b c | 5 |" in text  # escaped: one row, three cells
    assert "| batch: failed requests | <= 1% | 50.0% (5/10) | FAIL |" in text
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["passed"] is False
    assert data["results"]["cache_hit"]["p99_ms"] == 10.0
    assert [c["passed"] for c in data["checks"]] == [c.passed for c in checks]


def test_a_passing_report_says_so() -> None:
    text = render(_passing(), evaluate(_passing()), [])
    assert text.startswith("# tailsynth load test: PASS") and "FAIL" not in text


def test_stage_timings_table_for_cold_scenarios() -> None:
    results = _passing()
    cold = results["cold_sequential"]
    results["cold_sequential"] = Result(
        cold.scenario, 25, 0, 3500, 3600, 4000, 4100, 0.25, stage_ms={"rewrite": 2500.0, "total": 3400.0}
    )
    text = render(results, evaluate(results), [])
    assert "| scenario | rewrite ms | total ms |" in text
    assert "| cold_sequential | 2500 | 3400 |" in text
    assert "cold_concurrent |" not in text.split("## Where cold syntheses spend their time")[1]
