"""Locust CSV parsing, durations, exact percentiles and per-scenario summaries."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from loadtests.results import (
    AGGREGATED,
    Latencies,
    Scenario,
    Stats,
    host_shares,
    mean_stages,
    parse_duration,
    percentile,
    read_failures,
    read_latencies,
    read_stats,
    summarize,
)

# Written by locust 2.x with --csv (header and rows as it writes them).
STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,cache hit,2432,3,3,6.19,0.94,81.46,16401.0,127.87,0.1,3,5,6,7,13,21,33,43,80,81,81
,Aggregated,2432,3,3,6.19,0.94,81.46,16401.0,127.87,0.1,3,5,6,7,13,21,33,43,80,81,81
"""
EMPTY_STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,\
Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
,Aggregated,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
"""
FAILURES_CSV = """\
Method,Name,Error,Occurrences,First Seen,Last Seen
POST,cold,"HTTP 504: deadline",2,1.0,2.0
POST,cold,"HTTP 502: rewriter unavailable",7,1.0,2.0
POST,cold,"ConnectionResetError(104, 'Connection reset by peer')",1,1.0,2.0
POST,cold,"not JSON",4,1.0,2.0
"""


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600), (" 5s ", 5)]
)
def test_durations_in_locust_run_time_format(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "1.5m", "ten", "5 m", "-3s", "2d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_stats_rows_by_request_name(tmp_path: Path) -> None:
    path = tmp_path / "hit_stats.csv"
    path.write_text(STATS_CSV)
    rows = read_stats(path)
    assert set(rows) == {"cache hit", AGGREGATED}
    total = rows[AGGREGATED]
    assert (total.requests, total.failures, total.median_ms, total.p99_ms) == (2432, 3, 3.0, 43.0)
    assert total.rps == pytest.approx(127.87)


def test_stats_without_requests_have_no_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "empty_stats.csv"
    path.write_text(EMPTY_STATS_CSV)
    total = read_stats(path)[AGGREGATED]
    assert total.requests == 0 and total.p99_ms is None


def test_most_frequent_failures_first(tmp_path: Path) -> None:
    path = tmp_path / "cold_failures.csv"
    path.write_text(FAILURES_CSV)
    assert read_failures(path, limit=2) == [("HTTP 502: rewriter unavailable", 7), ("not JSON", 4)]
    assert read_failures(tmp_path / "missing.csv") == []


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.5], 99) == 7.5
    assert percentile([], 50) is None


def test_latency_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "lat.json"
    data = {
        "started": 10.0,
        "stopped": 40.0,
        "cpu_s": 3.0,
        "samples": [[11.0, 2.5], [12.0, 3.5]],
        "failures": [[13.0, "HTTP 504: deadline"]],
    }
    path.write_text(json.dumps(data))
    found = read_latencies(path)
    assert found.samples == [(11.0, 2.5), (12.0, 3.5)]
    assert found.failures == [(13.0, "HTTP 504: deadline")]
    assert (found.started, found.stopped, found.cpu_s, found.server_cpu_s) == (10.0, 40.0, 3.0, None)


def _scenario(run_time_s: int = 10) -> Scenario:
    return Scenario("cold_sequential", "ColdUser", 1, run_time_s, "gateway", "1 user", 180)


def test_throughput_counts_only_requests_finished_within_the_run_time() -> None:
    # Users start at t=100; run time 10 s. Finished at 99 (before: impossible but ignored), 101 .. 110
    # (inside) and 125 (in the stop timeout: its latency counts, its completion does not).
    samples = [(99.0, 1.0)] + [(100.0 + i, 1000.0 * i) for i in range(1, 11)] + [(125.0, 20000.0)]
    latencies = Latencies(started=100.0, stopped=126.0, samples=samples, cpu_s=2.6, server_cpu_s=13.0)
    total = Stats(AGGREGATED, 12, 1, None, None, 0.0)
    result = summarize(_scenario(), latencies, total, launched=90.0)
    assert result.throughput == pytest.approx(1.0)  # 10 finished within [100, 110]
    assert result.max_ms == 20000.0 and result.p50_ms == 5000.0
    assert (result.requests, result.failures) == (13, 1)  # 12 successes + 1 failure > locust's 12
    assert result.failure_ratio == pytest.approx(1 / 13)
    assert result.client_cpu == pytest.approx(0.1) and result.server_cpu == pytest.approx(0.5)


def test_without_a_start_time_the_window_starts_at_launch() -> None:
    latencies = Latencies(started=None, stopped=None, samples=[(100.5, 3.0), (111.0, 3.0)])
    result = summarize(_scenario(), latencies, Stats(AGGREGATED, 2, 0, 3, 3, 0.2), launched=100.0)
    assert result.throughput == pytest.approx(0.1)  # only the first finished by 110
    assert result.client_cpu is None


def test_no_successes_means_no_percentiles_and_a_failure_ratio_of_one() -> None:
    latencies = Latencies(started=0.0, stopped=10.0, samples=[])
    result = summarize(_scenario(), latencies, Stats(AGGREGATED, 0, 0, None, None, 0.0), launched=0.0)
    assert result.p50_ms is None and result.p99_ms is None and result.throughput == 0.0
    assert result.failure_ratio == 1.0


def test_host_shares_from_two_readings() -> None:
    busy, steal = host_shares((100.0, 10.0, 1000.0), (400.0, 60.0, 2000.0))
    assert busy == pytest.approx(0.3) and steal == pytest.approx(0.05)
    assert host_shares(None, (1.0, 0.0, 2.0)) == (None, None)
    assert host_shares((1.0, 0.0, 2.0), (1.0, 0.0, 2.0)) == (None, None)


def test_mean_stage_timings_in_first_seen_order() -> None:
    stages = [
        {"rewrite": 2000.0, "judge": 500.0, "total": 3000.0},
        {"rewrite": 1000.0, "total": 2000.0, "x": "?"},
    ]
    assert mean_stages(stages) == {"rewrite": 1500.0, "judge": 500.0, "total": 2500.0}  # type: ignore[arg-type]
    assert list(mean_stages(stages)) == ["rewrite", "judge", "total"]  # type: ignore[arg-type]
    latencies = Latencies(started=0.0, stopped=1.0, samples=[(0.5, 3000.0)], stages=stages)  # type: ignore[arg-type]
    result = summarize(_scenario(), latencies, Stats(AGGREGATED, 1, 0, None, None, 0.0), launched=0.0)
    assert result.stage_ms["judge"] == 500.0


def test_failures_the_csv_missed_still_count() -> None:
    # Both requests finished in the stop timeout, after locust's last CSV write: the CSV saw nothing.
    failures = [(130.0, "1 of 8 queries succeeded, 7 failed"), (131.0, "1 of 8 queries succeeded, 7 failed")]
    latencies = Latencies(started=100.0, stopped=131.0, samples=[], failures=failures)
    csv_examples = [("stale CSV error", 1)]
    result = summarize(
        _scenario(),
        latencies,
        Stats(AGGREGATED, 0, 0, None, None, 0.0),
        launched=0.0,
        failure_examples=csv_examples,
    )
    assert (result.requests, result.failures, result.failure_ratio) == (2, 2, 1.0)
    assert result.failure_examples == [("1 of 8 queries succeeded, 7 failed", 2)]
    # Where the file has no failures, the CSV's count and examples stand.
    quiet = Latencies(started=100.0, stopped=131.0, samples=[(101.0, 5.0)])
    result = summarize(
        _scenario(),
        quiet,
        Stats(AGGREGATED, 3, 2, None, None, 0.0),
        launched=0.0,
        failure_examples=csv_examples,
    )
    assert (result.requests, result.failures, result.failure_examples) == (3, 2, csv_examples)
