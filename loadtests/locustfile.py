"""Locust load test for the tailsynth gateway.

Traffic mix (task weights):
  3  POST /v1/synthesize with a query from a small hot set (served from the gateway's cache);
  1  POST /v1/synthesize with a fresh query from data/demo/wands_queries.tsv (the full pipeline);
  1  GET /readyz.

A synthesize request counts as a success only with HTTP 200 and a JSON body holding a "pairs" list.
Successful responses are recorded by what the gateway says it did, from the body's "cached" flag:
"/v1/synthesize [cached]" or "/v1/synthesize [uncached]". Failed ones keep the name of their task,
"/v1/synthesize [hot]" or "/v1/synthesize [fresh]". Before users start, every hot query is sent once
(unrecorded) so the hot set is in the cache.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000
    python loadtests/run_headless.py --host http://127.0.0.1:8000     # headless, with thresholds
"""

from __future__ import annotations

import csv
import itertools
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from locust import HttpUser, between, events, task
from locust.clients import ResponseContextManager
from locust.env import Environment
from locust.runners import WorkerRunner

log = logging.getLogger("tailsynth.loadtest")

SYNTHESIZE_PATH = "/v1/synthesize"
READY_PATH = "/readyz"
NAME_CACHED = f"{SYNTHESIZE_PATH} [cached]"
NAME_UNCACHED = f"{SYNTHESIZE_PATH} [uncached]"
NAME_HOT = f"{SYNTHESIZE_PATH} [hot]"
NAME_FRESH = f"{SYNTHESIZE_PATH} [fresh]"

NUM_REWRITES = 4
TOP_K = 20
SYNTHESIZE_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 10.0

DEFAULT_QUERIES_FILE = Path(__file__).resolve().parents[1] / "data" / "demo" / "wands_queries.tsv"
QUERY_COLUMNS = ("query_id", "query", "query_class")

# Repeated all the time: after the warm-up these are answered from the cache.
HOT_QUERIES: tuple[str, ...] = (
    "modern sofa",
    "outdoor patio set",
    "bathroom vanity",
    "queen bed frame",
    "counter height bar stools",
    "area rug 8x10",
)


class QueriesFileError(RuntimeError):
    """The fresh-query file is missing or holds no queries."""


def load_queries(path: Path) -> list[str]:
    """Queries from a WANDS-style TSV: columns query_id, query, query_class (header row optional)."""
    if not path.is_file():
        raise QueriesFileError(
            f"query file {path} not found: the fresh-query task needs a tab-separated file with columns "
            f"{', '.join(QUERY_COLUMNS)} (the repository ships data/demo/wands_queries.tsv); "
            "pass another one with --queries-file"
        )
    queries: list[str] = []
    seen: set[str] = set()
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 2 or row[0].strip() == QUERY_COLUMNS[0]:
                continue  # blank/short line or the header
            query = row[1].strip()
            if query and query not in seen:
                seen.add(query)
                queries.append(query)
    if not queries:
        raise QueriesFileError(f"query file {path} has no queries in its second (query) column")
    return queries


class FreshQueries:
    """Hands out the file's queries in a shuffled order, each once before any repeats."""

    def __init__(self, queries: list[str], seed: int | None = None) -> None:
        order = list(queries)
        random.Random(seed).shuffle(order)
        self.size = len(order)
        self._cycle: Iterator[str] = itertools.cycle(order)

    def next(self) -> str:
        return next(self._cycle)


_fresh: FreshQueries | None = None


def payload(query: str, *, use_cache: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query, "num_rewrites": NUM_REWRITES, "top_k": TOP_K}
    if not use_cache:
        body["use_cache"] = False
    return body


def _option(environment: Environment, name: str, default: Any) -> Any:
    options = environment.parsed_options
    return getattr(options, name, default) if options is not None else default


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--queries-file",
        type=str,
        default=str(DEFAULT_QUERIES_FILE),
        help="TSV of fresh queries (query_id, query, query_class). Default: data/demo/wands_queries.tsv",
    )
    parser.add_argument(
        "--fresh-no-cache",
        action="store_true",
        default=False,
        help='Send "use_cache": false with fresh queries, so repeated runs still measure the full pipeline.',
    )
    parser.add_argument(
        "--warmup-timeout",
        type=float,
        default=SYNTHESIZE_TIMEOUT_S,
        help="Seconds each hot query may take while the cache is warmed before the test.",
    )


@events.init.add_listener
def _load_fresh_queries(environment: Environment, **_kwargs: Any) -> None:
    global _fresh
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        # Workers load the file in _ensure_fresh(); library use without options loads the default.
        return
    try:
        _fresh = FreshQueries(load_queries(Path(_option(environment, "queries_file", DEFAULT_QUERIES_FILE))))
    except QueriesFileError as error:
        raise SystemExit(f"error: {error}") from None
    log.info("loaded %d fresh queries", _fresh.size)


def _ensure_fresh(environment: Environment) -> FreshQueries:
    global _fresh
    if _fresh is None:
        _fresh = FreshQueries(load_queries(Path(_option(environment, "queries_file", DEFAULT_QUERIES_FILE))))
    return _fresh


@events.test_start.add_listener
def _warm_cache(environment: Environment, **_kwargs: Any) -> None:
    """Send each hot query once, outside the statistics, so hot-set requests measure cache hits."""
    if isinstance(environment.runner, WorkerRunner) or not environment.host:
        return
    import requests  # here, not at the top: locust must monkey-patch ssl before requests loads it

    timeout = float(_option(environment, "warmup_timeout", SYNTHESIZE_TIMEOUT_S))
    url = environment.host.rstrip("/") + SYNTHESIZE_PATH
    with requests.Session() as session:
        for query in HOT_QUERIES:
            try:
                response = session.post(url, json=payload(query), timeout=timeout)
            except requests.RequestException as error:
                log.warning("warm-up of %r failed: %s", query, error)
                continue
            if response.status_code != 200:
                log.warning("warm-up of %r: HTTP %d %s", query, response.status_code, response.text[:200])
    log.info("warmed the cache with %d hot queries", len(HOT_QUERIES))


def check_synthesis(response: ResponseContextManager) -> None:
    """Mark the response failed or succeeded; successes are renamed by the body's `cached` flag."""
    if response.error is not None and not response.status_code:
        response.failure(f"request error: {response.error}")
        return
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
        return
    try:
        body = response.json()
    except ValueError:
        response.failure("response body is not JSON")
        return
    if not isinstance(body, dict) or not isinstance(body.get("pairs"), list):
        response.failure('response has no "pairs" list')
        return
    meta = cast(dict[str, Any], response.request_meta)
    meta["name"] = NAME_CACHED if body.get("cached") is True else NAME_UNCACHED
    response.success()


class GatewayUser(HttpUser):
    """A client of the synthesis API: mostly popular queries, some new ones, and readiness checks."""

    wait_time = between(0.5, 2.0)

    def _synthesize(self, query: str, name: str, *, use_cache: bool = True) -> None:
        with self.client.post(
            SYNTHESIZE_PATH,
            json=payload(query, use_cache=use_cache),
            name=name,
            timeout=SYNTHESIZE_TIMEOUT_S,
            catch_response=True,
        ) as response:
            check_synthesis(response)

    @task(3)
    def hot_query(self) -> None:
        self._synthesize(random.choice(HOT_QUERIES), NAME_HOT)

    @task(1)
    def fresh_query(self) -> None:
        query = _ensure_fresh(self.environment).next()
        no_cache = bool(_option(self.environment, "fresh_no_cache", False))
        self._synthesize(query, NAME_FRESH, use_cache=not no_cache)

    @task(1)
    def readiness(self) -> None:
        with self.client.get(
            READY_PATH, name=READY_PATH, timeout=READY_TIMEOUT_S, catch_response=True
        ) as response:
            if response.status_code == 200:
                response.success()
            elif response.error is not None and not response.status_code:
                response.failure(f"request error: {response.error}")
            else:
                response.failure(f"not ready: HTTP {response.status_code}: {(response.text or '')[:200]}")
