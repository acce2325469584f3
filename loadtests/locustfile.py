"""Locust scenarios for the tailsynth gateway; run_headless.py runs them one at a time, headless.

  CacheHitUser  POST /v1/synthesize with a hot query: answered from the cache after the warm-up
  BaselineUser  the same request to the raw FastAPI + Redis GET baseline (baseline_app.py)
  ColdUser      POST /v1/synthesize with the next fresh query and use_cache=false: the full pipeline
  BatchUser     POST /v1/synthesize:batch with 6 hot queries and 2 fresh ones (use_cache=false)

Hot users send one request per --hot-pacing seconds each (default 0.5), starting at a random point of
their first period so arrivals are spread evenly; cold users send back to back; batch users wait 0.5-1 s
between batches. A request counts as a success only with HTTP 200 and the expected body.

With --latency-file, the test's start and stop times, every successful request's finish time and
latency (ms, unrounded: locust's own statistics round to whole milliseconds) and every failure are
written there as JSON when locust quits, so run_headless.py computes exact percentiles and completions
per second, and counts requests that finish after the run time (locust's CSV files can miss those).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000 CacheHitUser
"""

from __future__ import annotations

import json
import random
import resource
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # locust loads this file by path
    sys.path.insert(0, _ROOT)

from locust import FastHttpUser, between, constant, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from loadtests.common import (  # noqa: E402
    BASELINE,
    BATCH,
    BATCH_FRESH,
    BATCH_HOT,
    DEFAULT_QUERIES_FILE,
    HOT_QUERIES,
    SYNTHESIZE,
    load_queries,
    payload,
    problem_with_batch,
    problem_with_result,
)
from loadtests.results import host_cpu_times, host_shares, process_cpu_s  # noqa: E402

HOT_PACING_S = 0.5
TIMEOUT_S = 300.0  # a cold request waits behind every other one for the rewriter


def _option(environment: Environment, name: str, default: Any) -> Any:
    options = environment.parsed_options
    return getattr(options, name, default) if options is not None else default


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--queries-file", default=str(DEFAULT_QUERIES_FILE), help="TSV of fresh queries.")
    parser.add_argument("--fresh-seed", type=int, default=0, help="Shuffle of the fresh queries.")
    parser.add_argument("--hot-pacing", type=float, default=HOT_PACING_S, help="Seconds per hot request.")
    parser.add_argument("--latency-file", default="", help="Write successful requests' latencies here.")
    parser.add_argument("--server-pid", type=int, default=0, help="Also record this process's CPU use.")


class _Fresh:
    """Fresh queries in a shuffled order, each once before any repeats, shared by all users."""

    def __init__(self) -> None:
        self._cycle: Iterator[str] | None = None
        self._lock = threading.Lock()

    def next(self, environment: Environment) -> str:
        with self._lock:
            if self._cycle is None:
                queries = load_queries(Path(_option(environment, "queries_file", str(DEFAULT_QUERIES_FILE))))
                random.Random(_option(environment, "fresh_seed", 0)).shuffle(queries)
                self._cycle = _repeat(queries)
            return next(self._cycle)


def _repeat(items: list[str]) -> Iterator[str]:
    while True:
        yield from items


FRESH = _Fresh()


class _Recorder:
    def __init__(self) -> None:
        self.started: float | None = None
        self.stopped: float | None = None
        self.cpu_s: float | None = None  # CPU seconds used from start to stop
        self.server_cpu_s: float | None = None  # the same for --server-pid
        self.host: tuple[float, float, float] | None = None  # host_cpu_times() at the start
        self.host_busy: float | None = None  # busy share of the machine from start to stop
        self.host_steal: float | None = None  # share the hypervisor took from start to stop
        self.samples: list[tuple[float, float]] = []  # (finished at, ms) of successful requests
        self.failures: list[tuple[float, str]] = []  # (finished at, error) of failed requests
        self.stages: list[dict[str, float]] = []  # timings_ms of successful cold syntheses


RECORDER = _Recorder()


@events.test_start.add_listener
def _test_start(environment: Environment, **_kwargs: Any) -> None:
    RECORDER.started = time.time()
    RECORDER.cpu_s = -_cpu_s()
    server = _server_cpu_s(environment)
    RECORDER.server_cpu_s = -server if server is not None else None
    RECORDER.host = host_cpu_times()


@events.test_stop.add_listener
def _test_stop(environment: Environment, **_kwargs: Any) -> None:
    RECORDER.stopped = time.time()
    if RECORDER.cpu_s is not None:
        RECORDER.cpu_s += _cpu_s()
    server = _server_cpu_s(environment)
    if RECORDER.server_cpu_s is not None and server is not None:
        RECORDER.server_cpu_s += server
    else:
        RECORDER.server_cpu_s = None
    RECORDER.host_busy, RECORDER.host_steal = host_shares(RECORDER.host, host_cpu_times())


def _server_cpu_s(environment: Environment) -> float | None:
    pid = int(_option(environment, "server_pid", 0))
    return process_cpu_s(pid) if pid > 0 else None


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@events.request.add_listener
def _record(response_time: float, exception: BaseException | None, **_kwargs: Any) -> None:
    # Locust's CSV files are written on a timer and can miss requests that finish after the run time
    # (within --stop-timeout); these events see every one.
    if exception is None:
        RECORDER.samples.append((time.time(), float(response_time)))
    else:
        RECORDER.failures.append((time.time(), str(exception) or type(exception).__name__))


@events.quitting.add_listener
def _write_latencies(environment: Environment, **_kwargs: Any) -> None:
    path = _option(environment, "latency_file", "")
    if path:
        data = {
            "started": RECORDER.started,
            "stopped": RECORDER.stopped,
            "cpu_s": RECORDER.cpu_s,
            "server_cpu_s": RECORDER.server_cpu_s,
            "host_busy": RECORDER.host_busy,
            "host_steal": RECORDER.host_steal,
            "samples": RECORDER.samples,
            "failures": RECORDER.failures,
            "stages": RECORDER.stages,
        }
        Path(path).write_text(json.dumps(data), encoding="utf-8")


def _json(response: Any) -> Any:
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
        return None
    try:
        return response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
        return None


def _verdict(response: Any, problem: str | None) -> None:
    if problem:
        response.failure(problem)
    else:
        response.success()


class _HotUser(FastHttpUser):
    """One request per pacing period, each user starting at a random point of its first period."""

    abstract = True
    path = SYNTHESIZE
    request_name = "cache hit"

    def on_start(self) -> None:
        self._pacing = float(_option(self.environment, "hot_pacing", HOT_PACING_S))
        offset = random.uniform(0, self._pacing)
        self._due = time.perf_counter() + offset
        time.sleep(offset)

    def wait_time(self) -> float:
        # Never catch up in a burst after a slow request: the next one is due a period later, or now.
        now = time.perf_counter()
        self._due = max(self._due + self._pacing, now)
        return self._due - now

    @task
    def hot(self) -> None:
        body = payload(random.choice(HOT_QUERIES))
        with self.client.post(self.path, json=body, name=self.request_name, catch_response=True) as response:
            # A byte check, not a JSON parse: the client shares the CPU with the server under test.
            content = response.content or b""
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
            elif (
                not content.startswith(b"{") or b'"cached":true' not in content or b'"pairs":' not in content
            ):
                response.failure(f"not a cached synthesis result: {content[:200]!r}")
            else:
                response.success()


class CacheHitUser(_HotUser):
    path = SYNTHESIZE
    request_name = "cache hit"


class BaselineUser(_HotUser):
    path = BASELINE
    request_name = "baseline"


class ColdUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = TIMEOUT_S

    @task
    def cold(self) -> None:
        body = payload(FRESH.next(self.environment), use_cache=False)
        with self.client.post(SYNTHESIZE, json=body, name="cold", catch_response=True) as response:
            result = _json(response)
            if result is not None:
                problem = problem_with_result(result, cached=False)
                _verdict(response, problem)
                if problem is None and isinstance(result.get("timings_ms"), dict):
                    RECORDER.stages.append(result["timings_ms"])


class BatchUser(FastHttpUser):
    wait_time = between(0.5, 1.0)
    network_timeout = TIMEOUT_S

    @task
    def batch(self) -> None:
        hot = [payload(q) for q in random.sample(HOT_QUERIES, BATCH_HOT)]
        fresh = [payload(FRESH.next(self.environment), use_cache=False) for _ in range(BATCH_FRESH)]
        queries = hot + fresh
        with self.client.post(
            BATCH, json={"queries": queries}, name="batch", catch_response=True
        ) as response:
            body = _json(response)
            if body is not None:
                _verdict(response, problem_with_batch(body, [q["use_cache"] for q in queries]))
