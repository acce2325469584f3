"""Requests and query sets shared by the locustfile and the runner.

Nothing here imports locust: importing it monkey-patches the process with gevent, which the runner
(asyncio, gRPC health checks while it starts the stack) must not be.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from services.pipeline.models import DEFAULT_NUM_REWRITES, DEFAULT_TOP_K

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUERIES_FILE = ROOT / "data" / "demo" / "wands_queries.tsv"

SYNTHESIZE = "/v1/synthesize"
BATCH = "/v1/synthesize:batch"
BASELINE = "/raw"  # baseline_app.py
NUM_REWRITES = DEFAULT_NUM_REWRITES
TOP_K = DEFAULT_TOP_K
# Queries every cache-hit request picks from; the runner synthesizes each once before measuring.
HOT_QUERIES: tuple[str, ...] = (
    "modern sofa",
    "outdoor patio set",
    "bathroom vanity",
    "queen bed frame",
    "counter height bar stools",
    "area rug 8x10",
)
BATCH_HOT = 6  # hot (cached) queries in one batch request
BATCH_FRESH = 2  # fresh queries (use_cache false) in one batch request


class QueriesFileError(RuntimeError):
    """The fresh-query file is missing or holds no queries."""


def payload(query: str, *, use_cache: bool = True) -> dict[str, Any]:
    """The body of POST /v1/synthesize (and one item of a batch)."""
    return {"query": query, "num_rewrites": NUM_REWRITES, "top_k": TOP_K, "use_cache": use_cache}


def load_queries(path: Path, exclude: tuple[str, ...] = HOT_QUERIES) -> list[str]:
    """Distinct queries from a WANDS-style TSV (query_id, query, query_class; header row optional),
    in file order, without the hot queries (a fresh query must not be a cache hit)."""
    if not path.is_file():
        raise QueriesFileError(f"query file {path} not found (tab-separated: query_id, query, query_class)")
    excluded = {q.casefold() for q in exclude}
    queries: list[str] = []
    seen: set[str] = set()
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 2 or row[0].strip() == "query_id":
                continue
            query = row[1].strip()
            if query and query.casefold() not in seen and query.casefold() not in excluded:
                seen.add(query.casefold())
                queries.append(query)
    if not queries:
        raise QueriesFileError(f"query file {path} has no queries in its second column")
    return queries


def problem_with_result(result: Any, cached: bool) -> str | None:
    """Why a synthesis result is not what was asked for, or None."""
    if not isinstance(result, dict):
        return "the result is not an object"
    if result.get("cached") is not cached:
        return f"cached is {result.get('cached')!r}, expected {cached}"
    if not isinstance(result.get("pairs"), list) or not isinstance(result.get("rewrites"), list):
        return "the result lacks its pairs or rewrites"
    return None


def problem_with_batch(body: Any, expected: list[bool]) -> str | None:
    """Why a batch response is not one successful result per query (with the expected cached flags)."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return "no results list"
    items = body["results"]
    if len(items) != len(expected) or body.get("failed") != 0 or body.get("succeeded") != len(expected):
        return f"{body.get('succeeded')} of {len(expected)} queries succeeded, {body.get('failed')} failed"
    for item, cached in zip(items, expected, strict=True):
        if item.get("status") != 200:
            return f"query {item.get('index')}: status {item.get('status')}: {str(item.get('error'))[:200]}"
        problem = problem_with_result(item.get("result"), cached)
        if problem:
            return f"query {item.get('index')}: {problem}"
    return None
