"""Run the load-test scenarios headless and write reports/loadtest.md (and .json next to it).

    python loadtests/run_headless.py                                  # starts the local stack itself
    python loadtests/run_headless.py --host http://127.0.0.1:8000     # a gateway that is already running

One after the other, in one run: the raw FastAPI + Redis GET baseline and cache hits (64 users each),
cold synthesis at concurrency 1 and 16, and batches. Checks: cache-hit p50 <= 2x the baseline's,
cache-hit p99 <= 10 ms, cold throughput at 16 >= 3x sequential, failed requests <= 1% in every
scenario. Exit code 0 when every check passes, 1 when one fails, 2 when the test could not run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import redis  # noqa: E402

from loadtests.common import (  # noqa: E402
    BASELINE,
    BATCH_FRESH,
    BATCH_HOT,
    DEFAULT_QUERIES_FILE,
    HOT_QUERIES,
    NUM_REWRITES,
    SYNTHESIZE,
    TOP_K,
    QueriesFileError,
    load_queries,
    payload,
)
from loadtests.report import Thresholds, evaluate, write  # noqa: E402
from loadtests.results import (  # noqa: E402
    AGGREGATED,
    Result,
    Scenario,
    Stats,
    host_cpu_times,
    host_shares,
    parse_duration,
    read_failures,
    read_latencies,
    read_stats,
    summarize,
    timer_jitter,
)

SCENARIOS = ("baseline", "cache_hit", "cold_sequential", "cold_concurrent", "batch")
BASELINE_KEY = "tailsynth:loadtest:baseline"
STOP_TIMEOUT_S = 180  # in-flight cold requests and batches get this long to finish after the run time
REQUEST_TIMEOUT_S = 600.0


class CannotRun(RuntimeError):
    """The load test could not run (exit code 2)."""


@dataclass(frozen=True)
class Target:
    host: str
    redis_url: str
    gateway_pid: int | None  # known when this script started the gateway
    description: str


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    pacing = args.hot_pacing
    hot_load = f"{args.hot_users} users, 1 request / {pacing:g} s each ({args.hot_users / pacing:.0f} req/s)"
    batch_load = (
        f"{args.batch_users} users, {BATCH_HOT} cached + {BATCH_FRESH} fresh queries per batch, "
        "0.5-1 s between batches"
    )
    cold_time, cold_load, stop = args.cold_time, f"{args.cold_users} users, back to back", STOP_TIMEOUT_S
    every = [
        Scenario("baseline", "BaselineUser", args.hot_users, args.hot_time, "baseline", hot_load),
        Scenario("cache_hit", "CacheHitUser", args.hot_users, args.hot_time, "gateway", hot_load),
        Scenario("cold_sequential", "ColdUser", 1, cold_time, "gateway", "1 user, back to back", stop),
        Scenario("cold_concurrent", "ColdUser", args.cold_users, cold_time, "gateway", cold_load, stop),
        Scenario("batch", "BatchUser", args.batch_users, args.batch_time, "gateway", batch_load, stop),
    ]
    return [s for s in every if s.name in args.scenarios]


def locust_command(
    scenario: Scenario, host: str, files: Path, args: argparse.Namespace, seed: int, server_pid: int | None
) -> list[str]:
    return [
        sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"),
        "--headless", "--only-summary", "--loglevel", "WARNING", "--host", host,
        "--users", str(scenario.users), "--spawn-rate", str(scenario.users),
        "--run-time", f"{scenario.run_time_s}s", "--stop-timeout", str(scenario.stop_timeout_s),
        "--csv", str(files / scenario.name), "--exit-code-on-error", "0",
        "--queries-file", str(args.queries_file), "--fresh-seed", str(seed), "--hot-pacing", str(args.hot_pacing),
        "--latency-file", str(files / f"{scenario.name}.latencies.json"), "--server-pid", str(server_pid or 0),
        scenario.user_class,
    ]  # fmt: skip


def run_scenario(
    scenario: Scenario, host: str, files: Path, args: argparse.Namespace, seed: int, server_pid: int | None
) -> Result:
    print(f"[loadtest] {scenario.name}: {scenario.load}, {scenario.run_time_s}s against {host}", flush=True)
    log_path = files / f"{scenario.name}.log"
    launched = time.time()
    with log_path.open("w", encoding="utf-8") as log:
        completed = subprocess.run(
            locust_command(scenario, host, files, args, seed, server_pid),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=scenario.run_time_s + scenario.stop_timeout_s + 120,
        )
    latency_file = files / f"{scenario.name}.latencies.json"
    stats_file = files / f"{scenario.name}_stats.csv"
    if completed.returncode != 0 or not latency_file.is_file() or not stats_file.is_file():
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise CannotRun(f"locust failed in {scenario.name} (exit {completed.returncode}):\n{tail}")
    total = read_stats(stats_file).get(AGGREGATED) or Stats(AGGREGATED, 0, 0, None, None, 0.0)
    latencies = read_latencies(latency_file)
    result = summarize(
        scenario,
        latencies,
        total,
        launched=launched,
        failure_examples=read_failures(files / f"{scenario.name}_failures.csv"),
    )
    print(
        f"[loadtest] {scenario.name}: {result.requests} requests, {result.failures} failed, "
        f"p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, {result.throughput:.3f}/s",
        flush=True,
    )
    if scenario.stop_timeout_s and (
        latencies.started is None
        or latencies.stopped is None
        or (latencies.stopped - latencies.started >= scenario.run_time_s + scenario.stop_timeout_s - 1)
    ):
        drain(host)  # users may have been stopped mid-request: let the gateway finish that work first
    return result


def drain(host: str) -> None:
    """Wait for abandoned work: the model services take requests one at a time, in arrival order, so an
    uncached synthesis sent now finishes after the work queued before it."""
    print("[loadtest] waiting for requests the last scenario abandoned", flush=True)
    with httpx.Client(base_url=host, timeout=REQUEST_TIMEOUT_S) as client:
        client.post(SYNTHESIZE, json=payload("loadtest drain probe", use_cache=False))


def warm_cache(host: str) -> bytes:
    """Synthesize every hot query (a miss the first time); return a cached response body."""
    print(f"[loadtest] warming the cache with {len(HOT_QUERIES)} hot queries", flush=True)
    with httpx.Client(base_url=host, timeout=REQUEST_TIMEOUT_S) as client:
        for query in HOT_QUERIES:
            client.post(SYNTHESIZE, json=payload(query)).raise_for_status()
        cached = [client.post(SYNTHESIZE, json=payload(query)) for query in HOT_QUERIES]
    for response in cached:
        response.raise_for_status()
        if response.json().get("cached") is not True:
            raise CannotRun(
                f"the gateway did not answer a repeated query from its cache: {response.text[:200]}"
            )
    return cached[0].content


@contextmanager
def local_stack(args: argparse.Namespace, scratch: Path) -> Iterator[Target]:
    """The whole system on free ports: models and index from --state-dir (built there on first use);
    Redis (cache, training stream) and the Parquet store in `scratch`, thrown away afterwards."""
    from services.cli.system import LocalSystem, Ports
    from services.core.redis_server import EmbeddedRedis

    store = EmbeddedRedis(scratch / "redis")
    redis_url = store.start()
    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REDIS_URL"}
    env |= {
        "TAILSYNTH_STORE_DIR": str(scratch / "store"),
        "TAILSYNTH_STORE_SPOOL_DIR": str(scratch / "spool"),
    }
    system = LocalSystem(
        state_dir=args.state_dir,
        catalog=ROOT / "data" / "demo" / "catalog.csv",
        ports=Ports.free(),
        redis_url=redis_url,
        workers=0,
        base_env=env,
    )
    try:
        print(f"[loadtest] starting the local stack (state in {args.state_dir})", flush=True)
        system.start()
        gateway = system.processes["gateway"]
        yield Target(
            system.gateway_url,
            redis_url,
            gateway.pid,
            "the local stack started by the load test: gateway, rewriter, retriever, judge (models on CPU), "
            "sink and an embedded valkey; no queue workers",
        )
    finally:
        system.stop()
        store.stop()


@contextmanager
def private_redis(scratch: Path) -> Iterator[str]:
    from services.core.redis_server import EmbeddedRedis

    server = EmbeddedRedis(scratch / "baseline-redis")
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def baseline_server(redis_url: str, body: bytes) -> Iterator[tuple[str, int]]:
    """baseline_app.py on a free port, serving `body` from Redis; yields its URL and process id."""
    from services.core.redis_server import free_port

    client = redis.Redis.from_url(redis_url)
    client.set(BASELINE_KEY, body, ex=24 * 3600)
    port = free_port()
    command = [sys.executable, "-m", "loadtests.baseline_app", "--port", str(port), "--redis-url", redis_url,
               "--key", BASELINE_KEY]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.post(f"{url}{BASELINE}", json={}, timeout=2).content == body:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise CannotRun("the baseline app did not start")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)
        client.delete(BASELINE_KEY)
        client.close()


@dataclass(frozen=True)
class Measured:
    results: dict[str, Result]
    body_bytes: int  # size of a cached answer
    jitter_ms: tuple[float, float, float]  # timer_jitter() before the scenarios
    idle_busy: float | None  # the machine's busy and steal shares meanwhile (the stack idle)
    idle_steal: float | None


def measure(args: argparse.Namespace, target: Target, scratch: Path) -> Measured:
    files = args.csv_dir or scratch / "locust"
    files.mkdir(parents=True, exist_ok=True)
    body = warm_cache(target.host)
    before = host_cpu_times()
    jitter = timer_jitter()
    idle_busy, idle_steal = host_shares(before, host_cpu_times())
    print(
        f"[loadtest] a 1 ms sleep wakes up late by p50/p99/max {jitter[0]:.2f}/{jitter[1]:.2f}/{jitter[2]:.2f} ms"
    )
    results: dict[str, Result] = {}
    with ExitStack() as stack:
        baseline_url, baseline_pid = "", None
        if "baseline" in args.scenarios:
            baseline_url, baseline_pid = stack.enter_context(baseline_server(target.redis_url, body))
        for seed, scenario in enumerate(build_scenarios(args)):
            on_baseline = scenario.target == "baseline"
            host = baseline_url if on_baseline else target.host
            pid = baseline_pid if on_baseline else target.gateway_pid
            results[scenario.name] = run_scenario(scenario, host, files, args, seed, pid)
    return Measured(results, len(body), jitter, idle_busy, idle_steal)


def context_lines(target: Target, measured: Measured) -> list[str]:
    body_bytes = measured.body_bytes
    p50, p99, worst = measured.jitter_ms
    return [
        f"target: {target.description} ({target.host})",
        f"machine: {os.cpu_count()} CPU cores shared by every server process and the load generator "
        f"(one locust {version('locust')} process per scenario)",
        f"noise: with the stack idle before the scenarios, a 1 ms sleep woke up late by {p50:.2f} ms at p50, "
        f"{p99:.2f} ms at p99, {worst:.1f} ms at most (a floor under every percentile below); the machine was "
        f"{_share(measured.idle_busy)} busy (more than a few % means another workload shares the cores) and "
        f"the hypervisor took {_share(measured.idle_steal)}",
        f"cache hits: the {len(HOT_QUERIES)} hot queries (num_rewrites {NUM_REWRITES}, top_k {TOP_K}), all "
        f"cached by a warm-up before the scenarios; a cached answer is {body_bytes} bytes",
        f"baseline: loadtests/baseline_app.py, one FastAPI POST route doing a Redis GET of a real cached answer "
        f"({body_bytes} bytes) in the same Redis, uvicorn with the gateway's settings (1 process, default "
        "loop, no access log), driven like the cache hits",
        "cold: fresh WANDS queries with use_cache=false, users send back to back; completed/s counts queries "
        "finished within the run time",
        f"batch: POST /v1/synthesize:batch, {BATCH_HOT} cached + {BATCH_FRESH} fresh (use_cache=false) queries",
    ]


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", help="a running gateway (default: start the local stack on free ports)")
    parser.add_argument(
        "--redis-url", help="with --host: the gateway's Redis, for the baseline (default: a private one)"
    )
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".tailsynth", help="models and index")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset to run")
    parser.add_argument("--hot-users", type=int, default=64)
    parser.add_argument("--hot-pacing", type=float, default=0.5, help="seconds between a hot user's requests")
    parser.add_argument("--hot-time", type=parse_duration, default="30s", help="per cache-hit scenario")
    parser.add_argument("--cold-users", type=int, default=16)
    parser.add_argument("--cold-time", type=parse_duration, default="90s", help="per cold scenario")
    parser.add_argument("--batch-users", type=int, default=2)
    parser.add_argument("--batch-time", type=parse_duration, default="60s")
    parser.add_argument("--queries-file", type=Path, default=DEFAULT_QUERIES_FILE)
    parser.add_argument("--report", type=Path, default=ROOT / "reports" / "loadtest.md")
    parser.add_argument("--csv-dir", type=Path, help="keep locust's CSV files and logs here")
    parser.add_argument("--max-hit-ratio", type=float, default=Thresholds.max_hit_vs_baseline_p50)
    parser.add_argument("--max-hit-p99-ms", type=float, default=Thresholds.max_hit_p99_ms)
    parser.add_argument("--min-cold-speedup", type=float, default=Thresholds.min_cold_speedup)
    parser.add_argument("--max-failure-ratio", type=float, default=Thresholds.max_failure_ratio)
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown or not args.scenarios:
        parser.error(f"--scenarios: unknown {', '.join(unknown) or '(none given)'}; choose from {SCENARIOS}")
    if min(args.hot_users, args.cold_users, args.batch_users) < 1 or args.hot_pacing <= 0:
        parser.error("user counts and --hot-pacing must be positive")
    try:
        load_queries(args.queries_file)
    except QueriesFileError as error:
        parser.error(str(error))
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds the context managers: the stack and the baseline stop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    from services.core.errors import ConfigError

    with tempfile.TemporaryDirectory(prefix="tailsynth-loadtest-") as tmp, ExitStack() as stack:
        scratch = Path(tmp)
        try:
            if args.host:
                redis_url = args.redis_url or stack.enter_context(private_redis(scratch))
                target = Target(args.host.rstrip("/"), redis_url, None, "a running gateway")
            else:
                target = stack.enter_context(local_stack(args, scratch))
            measured = measure(args, target, scratch)
        except (
            CannotRun,
            ConfigError,
            OSError,
            httpx.HTTPError,
            redis.RedisError,
            subprocess.SubprocessError,
        ) as error:
            print(f"[loadtest] could not run: {error}", file=sys.stderr)
            return 2
    limits = Thresholds(
        args.max_hit_ratio, args.max_hit_p99_ms, args.min_cold_speedup, args.max_failure_ratio
    )
    checks = evaluate(measured.results, limits)
    write(args.report, measured.results, checks, context_lines(target, measured))
    print(args.report.read_text(encoding="utf-8"), flush=True)
    print(f"[loadtest] report: {args.report} and {args.report.with_suffix('.json')}", flush=True)
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
