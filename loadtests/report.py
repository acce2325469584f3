"""Threshold checks over scenario results, and the markdown + JSON report."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtests.results import Result


@dataclass(frozen=True)
class Thresholds:
    max_hit_vs_baseline_p50: float = 2.0  # cache-hit p50 / raw baseline p50
    max_hit_p99_ms: float = 10.0
    min_cold_speedup: float = 3.0  # cold throughput at the concurrent level / sequential
    max_failure_ratio: float = 0.01  # in every scenario


@dataclass(frozen=True)
class Check:
    name: str
    limit: str
    observed: str
    passed: bool


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def evaluate(results: dict[str, Result], limits: Thresholds | None = None) -> list[Check]:
    """One check per threshold whose scenarios ran; a scenario without successes fails its checks."""
    limits = limits or Thresholds()
    checks: list[Check] = []
    hit, base = results.get("cache_hit"), results.get("baseline")
    if hit and base:
        ratio = hit.p50_ms / base.p50_ms if hit.p50_ms is not None and base.p50_ms else None
        checks.append(
            Check(
                f"cache-hit p50 vs raw FastAPI + Redis GET baseline p50 ({hit.scenario.users} users)",
                f"<= {limits.max_hit_vs_baseline_p50:g}x",
                "n/a"
                if ratio is None
                else f"{ratio:.2f}x ({fmt_ms(hit.p50_ms)} vs {fmt_ms(base.p50_ms)} ms)",
                ratio is not None and ratio <= limits.max_hit_vs_baseline_p50,
            )
        )
    if hit:
        # For reading a miss: the raw baseline's p99 and the hypervisor's share in the same run.
        notes = [f"baseline {fmt_ms(base.p99_ms)} ms"] if base else []
        if hit.host_steal is not None:
            notes.append(f"steal {hit.host_steal:.0%}")
        checks.append(
            Check(
                f"cache-hit p99 ({hit.scenario.users} users)",
                f"<= {limits.max_hit_p99_ms:g} ms",
                f"{fmt_ms(hit.p99_ms)} ms" + (f" ({', '.join(notes)})" if notes else ""),
                hit.p99_ms is not None and hit.p99_ms <= limits.max_hit_p99_ms,
            )
        )
    seq, conc = results.get("cold_sequential"), results.get("cold_concurrent")
    if seq and conc:
        speedup = conc.throughput / seq.throughput if seq.throughput else None
        checks.append(
            Check(
                f"cold synthesis throughput, concurrency {conc.scenario.users} vs {seq.scenario.users}",
                f">= {limits.min_cold_speedup:g}x",
                "n/a (no sequential completions)"
                if speedup is None
                else f"{speedup:.2f}x ({conc.throughput:.3f} vs {seq.throughput:.3f} queries/s)",
                speedup is not None and speedup >= limits.min_cold_speedup,
            )
        )
    for result in results.values():
        checks.append(
            Check(
                f"{result.scenario.name}: failed requests",
                f"<= {limits.max_failure_ratio:.0%}",
                f"{result.failure_ratio:.1%} ({result.failures}/{result.requests})",
                result.requests > 0 and result.failure_ratio <= limits.max_failure_ratio,
            )
        )
    return checks


def render(results: dict[str, Result], checks: list[Check], context: list[str]) -> str:
    passed = all(c.passed for c in checks)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# tailsynth load test: {'PASS' if passed else 'FAIL'}", "", now, ""]
    lines += [f"- {line}" for line in context]
    lines += ["", "## Checks", "", "| check | limit | observed | result |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.name} | {c.limit} | {c.observed} | {'PASS' if c.passed else 'FAIL'} |" for c in checks]
    lines += [
        "",
        "## Scenarios",
        "",
        "| scenario | offered load | run s | requests | failed | p50 ms | p95 ms | p99 ms | max ms "
        "| completed/s | server CPU | locust CPU | machine busy | steal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results.values():
        lines.append(
            f"| {r.scenario.name} | {r.scenario.load} | {r.scenario.run_time_s} | {r.requests} | {r.failures} "
            f"| {fmt_ms(r.p50_ms)} | {fmt_ms(r.p95_ms)} | {fmt_ms(r.p99_ms)} | {fmt_ms(r.max_ms)} "
            f"| {r.throughput:.3f} | {_share(r.server_cpu)} | {_share(r.client_cpu)} | {_share(r.host_cpu)} "
            f"| {_share(r.host_steal)} |"
        )
    staged = [r for r in results.values() if r.stage_ms]
    if staged:
        names = list(dict.fromkeys(name for r in staged for name in r.stage_ms))
        lines += [
            "",
            "## Where cold syntheses spend their time",
            "",
            "Mean of the `timings_ms` the gateway returns with each result (stages overlap: the rewrite and "
            "the search for the query itself run at the same time).",
            "",
            "| scenario | " + " | ".join(f"{name} ms" for name in names) + " |",
            "| --- |" + " ---: |" * len(names),
        ]
        for r in staged:
            cells = " | ".join(fmt_ms(r.stage_ms.get(name)) for name in names)
            lines.append(f"| {r.scenario.name} | {cells} |")
    failing = [r for r in results.values() if r.failure_examples]
    if failing:
        lines += ["", "## Failures", "", "| scenario | error | count |", "| --- | --- | ---: |"]
        for r in failing:
            for error, count in r.failure_examples:
                text = error.replace("|", "\\|").replace("\n", " ")[:300]
                lines.append(f"| {r.scenario.name} | {text} | {count} |")
    lines += [
        "",
        "Latencies are measured by locust (client side, unrounded) over every successful request; "
        "completed/s counts successful requests that finished within the run time. Server CPU is the "
        "HTTP server process's (the gateway's, or the baseline app's), locust CPU locust's own, both in "
        "cores (100% = one core); machine busy is the busy share of all cores, steal the share the "
        "hypervisor gave to other machines (time this one wanted a CPU and did not get it).",
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, results: dict[str, Result], checks: list[Check], context: list[str]) -> None:
    """The markdown report at `path`, and the same data as JSON next to it (same name, .json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(results, checks, context), encoding="utf-8")
    data = {
        "passed": all(c.passed for c in checks),
        "context": context,
        "checks": [asdict(c) for c in checks],
        "results": {name: asdict(r) for name, r in results.items()},
    }
    path.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
