"""Run the locust load test headless against a gateway and gate on latency and error thresholds.

    python loadtests/run_headless.py --host http://127.0.0.1:8000 --users 10 --run-time 2m

Runs `locust --headless` with loadtests/locustfile.py, reads its CSV statistics and checks:
  - failure ratio over all requests <= --max-failure-ratio (default 0.01);
  - p95 of cached synthesize responses <= --max-p95-cached-ms (default 200 ms);
  - p95 of uncached synthesize responses <= --max-p95-uncached-s (default 30 s).
Writes a markdown report (default reports/loadtest.md) and exits 0 when every check passes, 1 when a
check fails, 2 when the test could not run.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
DEFAULT_QUERIES = ROOT / "data" / "demo" / "wands_queries.tsv"
DEFAULT_REPORT = ROOT / "reports" / "loadtest.md"

# Request names written by locustfile.py.
NAME_CACHED = "/v1/synthesize [cached]"
NAME_UNCACHED = "/v1/synthesize [uncached]"
AGGREGATED = "Aggregated"

# In-flight requests get this long to finish once --run-time is up (longer than the locustfile's
# 120 s request timeout, so every started request is recorded, as a success or a timeout failure).
STOP_TIMEOUT_S = 130
# Extra seconds past --run-time for the cache warm-up (6 hot queries, 120 s each at worst), the stop
# timeout and writing the CSV files.
RUN_MARGIN_S = 6 * 120 + STOP_TIMEOUT_S + 120
DURATION_RE = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


@dataclass(frozen=True)
class Row:
    method: str
    name: str
    requests: int
    failures: int
    median_ms: float | None
    average_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    rps: float


@dataclass(frozen=True)
class Check:
    name: str
    limit: str
    observed: str
    passed: bool
    note: str = ""


def parse_duration(text: str) -> int:
    """Seconds in a locust --run-time value: 90, 90s, 2m, 1h30m."""
    match = DURATION_RE.match(text.strip())
    if not text.strip() or match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 90s, 2m, 1h30m)")
    hours, minutes, seconds = (int(match.group(k) or 0) for k in ("h", "m", "s"))
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError("duration must be positive")
    return total


def _number(value: str) -> float | None:
    value = (value or "").strip()
    if not value or value == "N/A":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def read_stats(path: Path) -> dict[str, Row]:
    """Rows of locust's <prefix>_stats.csv by request name (the total row is "Aggregated")."""
    rows: dict[str, Row] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            rows[record["Name"]] = Row(
                method=record.get("Type") or "",
                name=record["Name"],
                requests=int(record["Request Count"]),
                failures=int(record["Failure Count"]),
                median_ms=_number(record.get("Median Response Time", "")),
                average_ms=_number(record.get("Average Response Time", "")),
                p95_ms=_number(record.get("95%", "")),
                p99_ms=_number(record.get("99%", "")),
                max_ms=_number(record.get("Max Response Time", "")),
                rps=_number(record.get("Requests/s", "")) or 0.0,
            )
    return rows


def read_failures(path: Path, limit: int = 10) -> list[tuple[str, str, int]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        found = [(r["Name"], r["Error"], int(r["Occurrences"])) for r in csv.DictReader(handle)]
    return sorted(found, key=lambda item: -item[2])[:limit]


def evaluate(
    rows: dict[str, Row], max_failure_ratio: float, max_p95_cached_ms: float, max_p95_uncached_s: float
) -> list[Check]:
    checks: list[Check] = []
    total = rows.get(AGGREGATED)
    if total is None or total.requests == 0:
        checks.append(Check("requests sent", "> 0", "0", False, "no request completed"))
        return checks
    ratio = total.failures / total.requests
    checks.append(
        Check(
            "failure ratio",
            f"<= {max_failure_ratio:.2%}",
            f"{ratio:.2%} ({total.failures}/{total.requests})",
            ratio <= max_failure_ratio,
        )
    )
    cached = rows.get(NAME_CACHED)
    if cached is None or cached.requests == 0 or cached.p95_ms is None:
        checks.append(
            Check(
                "p95 cached synthesize",
                f"<= {max_p95_cached_ms:.0f} ms",
                "no samples",
                False,
                "cache not hit",
            )
        )
    else:
        checks.append(
            Check(
                "p95 cached synthesize",
                f"<= {max_p95_cached_ms:.0f} ms",
                f"{cached.p95_ms:.0f} ms ({cached.requests} requests)",
                cached.p95_ms <= max_p95_cached_ms,
            )
        )
    uncached = rows.get(NAME_UNCACHED)
    if uncached is None or uncached.requests == 0 or uncached.p95_ms is None:
        checks.append(
            Check(
                "p95 uncached synthesize",
                f"<= {max_p95_uncached_s:g} s",
                "no samples",
                True,
                "not measured: no successful uncached response (if fresh queries were cached, use --fresh-no-cache)",
            )
        )
    else:
        checks.append(
            Check(
                "p95 uncached synthesize",
                f"<= {max_p95_uncached_s:g} s",
                f"{uncached.p95_ms / 1000:.2f} s ({uncached.requests} requests)",
                uncached.p95_ms <= max_p95_uncached_s * 1000,
            )
        )
    return checks


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def render_report(
    args: argparse.Namespace,
    rows: dict[str, Row],
    checks: list[Check],
    failures: list[tuple[str, str, int]],
    locust_rc: int,
) -> str:
    passed = all(c.passed for c in checks)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# tailsynth load test",
        "",
        f"**Result: {'PASS' if passed else 'FAIL'}** ({now})",
        "",
        f"- target: `{args.host}`",
        f"- users: {args.users}, spawn rate: {args.spawn_rate}/s, run time: {args.run_time}",
        "- mix: hot-set synthesize x3 (cache), fresh WANDS query x1, GET /readyz x1",
        f"- fresh queries: `{Path(args.queries_file).name}`"
        + (" (sent with use_cache=false)" if args.fresh_no_cache else ""),
        f"- locust exit code: {locust_rc}",
        "",
        "## Thresholds",
        "",
        "| check | limit | observed | result |",
        "| --- | --- | --- | --- |",
    ]
    for check in checks:
        result = "PASS" if check.passed else "FAIL"
        note = f" ({check.note})" if check.note else ""
        lines.append(f"| {check.name} | {check.limit} | {check.observed} | {result}{note} |")
    lines += [
        "",
        "## Requests",
        "",
        "| request | count | failures | median ms | avg ms | p95 ms | p99 ms | max ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ordered = sorted((r for r in rows.values() if r.name != AGGREGATED), key=lambda r: r.name)
    if AGGREGATED in rows:
        ordered.append(rows[AGGREGATED])
    for row in ordered:
        label = f"{row.method} {row.name}".strip()
        lines.append(
            f"| {label} | {row.requests} | {row.failures} | {_ms(row.median_ms)} | {_ms(row.average_ms)} "
            f"| {_ms(row.p95_ms)} | {_ms(row.p99_ms)} | {_ms(row.max_ms)} | {row.rps:.2f} |"
        )
    lines += [
        "",
        "Successful synthesize responses are named by the body's `cached` flag; failed ones by their task",
        "(`[hot]`, `[fresh]`). Locust rounds response times above 100 ms to 2 significant digits.",
    ]
    if failures:
        lines += ["", "## Most frequent failures", "", "| request | error | count |", "| --- | --- | ---: |"]
        for name, error, count in failures:
            lines.append(f"| {name} | {error.replace('|', '/')[:200]} | {count} |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="http://127.0.0.1:8000", help="Gateway base URL.")
    parser.add_argument("--users", type=int, default=10, help="Concurrent simulated users.")
    parser.add_argument("--spawn-rate", type=float, default=2.0, help="Users started per second.")
    parser.add_argument("--run-time", default="2m", help="Test duration (locust format: 90s, 2m, 1h30m).")
    parser.add_argument("--max-failure-ratio", type=float, default=0.01, help="Highest failed/total.")
    parser.add_argument("--max-p95-cached-ms", type=float, default=200.0, help="p95 limit for cache hits.")
    parser.add_argument(
        "--max-p95-uncached-s", type=float, default=30.0, help="p95 limit for full-pipeline requests."
    )
    parser.add_argument("--queries-file", default=str(DEFAULT_QUERIES), help="TSV of fresh queries.")
    parser.add_argument(
        "--fresh-no-cache", action="store_true", help="Send fresh queries with use_cache=false."
    )
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="Markdown report to write.")
    parser.add_argument(
        "--csv-dir", type=Path, default=None, help="Keep locust's CSV files here (default: a temporary dir)."
    )
    args = parser.parse_args(argv)
    try:
        args.run_time_s = parse_duration(args.run_time)
    except argparse.ArgumentTypeError as error:
        parser.error(f"--run-time: {error}")
    if args.users < 1 or args.spawn_rate <= 0:
        parser.error("--users must be >= 1 and --spawn-rate > 0")
    return args


def run_locust(args: argparse.Namespace, csv_prefix: Path) -> int:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        args.host,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.run_time,
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--csv",
        str(csv_prefix),
        "--only-summary",
        # Failures are judged here against --max-failure-ratio, not by locust's exit code.
        "--exit-code-on-error",
        "0",
        "--queries-file",
        args.queries_file,
    ]
    if args.fresh_no_cache:
        command.append("--fresh-no-cache")
    print("running:", " ".join(command), flush=True)
    try:
        return subprocess.run(
            command, cwd=ROOT, timeout=args.run_time_s + RUN_MARGIN_S, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        print(f"error: locust did not finish within {args.run_time_s + RUN_MARGIN_S} s", file=sys.stderr)
        return 124


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(args.queries_file).is_file():
        print(
            f"error: fresh-query file {args.queries_file} not found (tab-separated: query_id, query, "
            "query_class; the repository ships data/demo/wands_queries.tsv). Pass --queries-file.",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="tailsynth-loadtest-") as scratch:
        csv_dir = args.csv_dir or Path(scratch)
        csv_dir.mkdir(parents=True, exist_ok=True)
        prefix = csv_dir / "locust"
        rc = run_locust(args, prefix)
        stats_file = Path(f"{prefix}_stats.csv")
        if rc != 0 or not stats_file.is_file():
            print(f"error: locust exited with {rc} and wrote no statistics ({stats_file})", file=sys.stderr)
            return 2
        rows = read_stats(stats_file)
        failures = read_failures(Path(f"{prefix}_failures.csv"))
    checks = evaluate(rows, args.max_failure_ratio, args.max_p95_cached_ms, args.max_p95_uncached_s)
    report = render_report(args, rows, checks, failures, rc)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(report, encoding="utf-8")
    for check in checks:
        status = "PASS" if check.passed else "FAIL"
        print(f"{status}  {check.name}: {check.observed} (limit {check.limit}) {check.note}".rstrip())
    print(f"report: {args.report}")
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
