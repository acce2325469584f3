"""Scenario results: locust's CSV statistics, exact latency percentiles, throughput and CPU use."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

DURATION_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")
AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class Scenario:
    name: str
    user_class: str  # in locustfile.py
    users: int
    run_time_s: int
    target: str  # "gateway" or "baseline"
    load: str  # the offered load, in words
    stop_timeout_s: int = 0  # in-flight requests get this long to finish after the run time


@dataclass(frozen=True)
class Stats:
    """One row of locust's <prefix>_stats.csv (its percentiles are rounded to whole milliseconds)."""

    name: str
    requests: int
    failures: int
    median_ms: float | None
    p99_ms: float | None
    rps: float


@dataclass(frozen=True)
class Latencies:
    """What locustfile.py writes to --latency-file."""

    started: float | None  # when the users started (epoch seconds)
    stopped: float | None
    samples: list[tuple[float, float]]  # (finished at, ms) of successful requests
    failures: list[tuple[float, str]] = field(default_factory=list)  # (finished at, error) of failed ones
    cpu_s: float | None = None  # CPU seconds locust used while the test ran
    server_cpu_s: float | None = None  # CPU seconds the server under test used meanwhile
    host_busy: float | None = None  # busy share of the whole machine meanwhile, 0..1
    host_steal: float | None = None  # share of the machine's CPU time taken by the hypervisor, 0..1
    stages: list[dict[str, float]] = field(default_factory=list)  # timings_ms of cold syntheses


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    requests: int
    failures: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    throughput: float  # successful requests finished per second of the run time
    client_cpu: float | None = None  # locust's CPU use, in cores
    server_cpu: float | None = None  # the HTTP server's CPU use (gateway or baseline app), in cores
    host_cpu: float | None = None  # the whole machine's busy share, 0..1
    host_steal: float | None = None  # CPU time the hypervisor took from this machine, 0..1
    failure_examples: list[tuple[str, int]] = field(default_factory=list)  # (error, occurrences)
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean of the gateway's timings_ms

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0


def parse_duration(text: str) -> int:
    """Seconds in a duration written as locust's --run-time: 90, 90s, 2m, 1m30s, 1h."""
    match = DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 90s, 2m, 1m30s)")
    hours, minutes, seconds = (int(match.group(k) or 0) for k in ("h", "m", "s"))
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be positive")
    return total


def _number(value: str | None) -> float | None:
    try:
        number = float((value or "").strip())
    except ValueError:  # "", "N/A"
        return None
    return None if math.isnan(number) else number


def read_stats(path: Path) -> dict[str, Stats]:
    """Rows of locust's <prefix>_stats.csv by request name; the total row is "Aggregated"."""
    rows: dict[str, Stats] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            rows[record["Name"]] = Stats(
                name=record["Name"],
                requests=int(record["Request Count"]),
                failures=int(record["Failure Count"]),
                median_ms=_number(record.get("Median Response Time")),
                p99_ms=_number(record.get("99%")),
                rps=_number(record.get("Requests/s")) or 0.0,
            )
    return rows


def read_failures(path: Path, limit: int = 3) -> list[tuple[str, int]]:
    """The most frequent errors in locust's <prefix>_failures.csv: (error, occurrences)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        found = [(r["Error"], int(r["Occurrences"])) for r in csv.DictReader(handle)]
    return sorted(found, key=lambda item: -item[1])[:limit]


def read_latencies(path: Path) -> Latencies:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Latencies(
        started=data.get("started"),
        stopped=data.get("stopped"),
        samples=[(float(t), float(ms)) for t, ms in data.get("samples", [])],
        failures=[(float(t), str(error)) for t, error in data.get("failures", [])],
        cpu_s=data.get("cpu_s"),
        server_cpu_s=data.get("server_cpu_s"),
        host_busy=data.get("host_busy"),
        host_steal=data.get("host_steal"),
        stages=[s for s in data.get("stages", []) if isinstance(s, dict)],
    )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(
    scenario: Scenario,
    latencies: Latencies,
    total: Stats,
    *,
    launched: float,
    failure_examples: list[tuple[str, int]] | None = None,
) -> Result:
    """Latency percentiles over every successful request (also those finishing in the stop timeout);
    throughput over those finishing within the run time, counted from when the users started (or
    from `launched`, when locust was started, if the file lacks it). Requests and failures are counted
    from the latency file, or from locust's CSV row (`total`) where that saw more; failure examples
    likewise, the CSV's (`failure_examples`) only where the file has none."""
    start = latencies.started if latencies.started is not None else launched
    end = start + scenario.run_time_s
    finished = sum(1 for at, _ in latencies.samples if start <= at <= end)
    values = [ms for _, ms in latencies.samples]
    failures = max(len(latencies.failures), total.failures)
    errors = Counter(error for _, error in latencies.failures).most_common(3)
    measured_s = (latencies.stopped - start) if latencies.stopped is not None else None

    def per_second(cpu_s: float | None) -> float | None:
        return cpu_s / measured_s if cpu_s is not None and measured_s else None

    return Result(
        scenario=scenario,
        requests=max(total.requests, len(values) + failures),
        failures=failures,
        p50_ms=percentile(values, 50),
        p95_ms=percentile(values, 95),
        p99_ms=percentile(values, 99),
        max_ms=max(values) if values else None,
        throughput=finished / scenario.run_time_s,
        client_cpu=per_second(latencies.cpu_s),
        server_cpu=per_second(latencies.server_cpu_s),
        host_cpu=latencies.host_busy,
        host_steal=latencies.host_steal,
        failure_examples=errors or failure_examples or [],
        stage_ms=mean_stages(latencies.stages),
    )


def mean_stages(stages: list[dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per stage name, in the order stages first appear, over the results that have it."""
    sums: dict[str, list[float]] = {}
    for timings in stages:
        for name, ms in timings.items():
            if isinstance(ms, int | float):
                sums.setdefault(name, []).append(float(ms))
    return {name: sum(values) / len(values) for name, values in sums.items()}


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used, from /proc; None where that is unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def host_cpu_times() -> tuple[float, float, float] | None:
    """(busy, steal, total) CPU time of the whole machine in clock ticks, from /proc/stat. Steal is time
    a virtual machine's CPUs were ready to run but the hypervisor ran something else."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        ticks = [float(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return None
    idle, steal = ticks[3] + ticks[4], ticks[7]
    return sum(ticks) - idle - steal, steal, sum(ticks)


def host_shares(
    before: tuple[float, float, float] | None, after: tuple[float, float, float] | None
) -> tuple[float | None, float | None]:
    """(busy, steal) shares of all CPU time between two host_cpu_times() readings."""
    if before is None or after is None or after[2] <= before[2]:
        return None, None
    total = after[2] - before[2]
    return (after[0] - before[0]) / total, (after[1] - before[1]) / total


def timer_jitter(seconds: float = 5.0) -> tuple[float, float, float]:
    """How late a 1 ms sleep wakes up on this machine: (p50, p99, max) in ms. On an idle machine this
    is the floor under any latency percentile measured here."""
    late: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        time.sleep(0.001)
        late.append((time.perf_counter() - started) * 1000 - 1.0)
    return percentile(late, 50) or 0.0, percentile(late, 99) or 0.0, max(late)
