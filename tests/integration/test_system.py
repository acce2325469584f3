"""The whole system with real parts: Redis, the three gRPC services with real models, sink, gateway."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import redis

from services.cli.system import LocalSystem

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUERY = "cordless drill for deck screws"


@pytest.fixture(scope="module")
def system(live_system: LocalSystem) -> LocalSystem:
    return live_system


@pytest.fixture(scope="module")
def api(system: LocalSystem) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=system.gateway_url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def first(api: httpx.Client) -> dict:
    response = api.post("/v1/synthesize", json={"query": QUERY, "num_rewrites": 6})
    assert response.status_code == 200, response.text
    return response.json()


def test_synthesis_returns_rewrites_scored_pairs_and_accepted_pairs(first: dict) -> None:
    assert first["query"] == QUERY and first["cached"] is False
    texts = {r["text"].lower() for r in first["rewrites"]}
    assert len(texts) >= 2, first["rewrites"]
    assert QUERY not in texts
    # The default engines: the LLM and the catalog (here at least its pseudo-relevance feedback).
    sources = {r["source"] for r in first["rewrites"]}
    assert "llm:hf" in sources and "catalog:prf" in sources, sources
    assert sources <= {"llm:hf", "catalog:relax", "catalog:spell", "catalog:prf"}
    for rewrite in first["rewrites"]:
        assert set(rewrite["rewards"]) == {
            "intent",
            "product_relevance",
            "relevance",
            "increment",
            "alignment",
            "diversity",
        }
    rewards = [r["reward"] for r in first["rewrites"]]
    assert rewards == sorted(rewards, reverse=True) and [r["rank"] for r in first["rewrites"]][0] == 1
    assert first["diagnostics"]["rewriter_failures"] == [] and first["diagnostics"]["generated_tokens"] > 0
    assert first["pairs"], "no products were judged"
    for pair in first["pairs"]:
        assert 0.0 <= pair["score"] <= 1.0
        assert pair["label"] in {"exact", "partial", "irrelevant"}
        assert pair["retrieved_by"] and pair["reason"]
    assert first["accepted_count"] == sum(p["accepted"] for p in first["pairs"]) > 0
    assert {"rewrite", "search_query", "judge_products", "total"} <= set(first["timings_ms"])
    assert first["pipeline_version"].startswith("0.1.0+")


def test_accepted_pairs_reach_the_stream_and_then_parquet(system: LocalSystem, first: dict) -> None:
    accepted = {p["pair_id"] for p in first["pairs"] if p["accepted"]}
    client = redis.Redis.from_url(system.redis_url or "")
    entries = [fields for _, fields in client.xrange("tailsynth:pairs")]
    in_stream = {fields[b"pair_id"].decode() for fields in entries if fields.get(b"kind", b"pair") == b"pair"}
    assert accepted <= in_stream
    # The synthesis's ranked rewrites travel beside its pairs, once.
    records = [
        json.loads(f[b"rewrites"])
        for f in entries
        if f.get(b"kind") == b"rewrites" and f[b"query"].decode() == first["query"]
    ]
    rankings = [[r["text"] for r in rewrites] for rewrites in records]
    assert rankings.count([r["text"] for r in first["rewrites"]]) == 1
    store = system.state_dir / "store"
    deadline = time.monotonic() + 30
    stored: set[str] = set()
    while time.monotonic() < deadline and not accepted <= stored:
        stored = {
            i for f in store.glob("pairs-*.parquet") for i in pq.read_table(f).column("pair_id").to_pylist()
        }
        time.sleep(0.2)
    assert accepted <= stored
    assert client.xpending("tailsynth:pairs", "sink")["pending"] == 0
    stored_queries = [
        q for f in store.glob("rewrites-*.parquet") for q in pq.read_table(f).column("query").to_pylist()
    ]
    assert stored_queries.count(first["query"]) == len(records)


def test_a_repeat_is_served_from_the_cache(api: httpx.Client, first: dict) -> None:
    again = api.post("/v1/synthesize", json={"query": "  Cordless Drill for deck SCREWS ", "num_rewrites": 6})
    assert again.status_code == 200
    body = again.json()
    assert body["cached"] is True
    assert body["pairs"] == first["pairs"] and body["rewrites"] == first["rewrites"]


def test_bypassing_the_cache_synthesises_again_without_storing_twice(
    api: httpx.Client, system: LocalSystem, first: dict
) -> None:
    client = redis.Redis.from_url(system.redis_url or "", decode_responses=True)

    def pair_ids_in_stream() -> list[str]:  # rewrites records share the stream; count pairs only
        return [f["pair_id"] for _, f in client.xrange("tailsynth:pairs") if f.get("kind", "pair") == "pair"]

    before = pair_ids_in_stream()
    fresh = api.post("/v1/synthesize", json={"query": QUERY, "num_rewrites": 6, "use_cache": False}).json()
    assert fresh["cached"] is False
    already = {p["pair_id"] for p in first["pairs"] if p["accepted"]}
    new = {p["pair_id"] for p in fresh["pairs"] if p["accepted"]} - already
    after = pair_ids_in_stream()
    assert len(after) == len(before) + len(new)
    assert len(set(after)) == len(after)


@pytest.mark.parametrize(
    "body",
    [{"query": ""}, {"query": "  "}, {"query": "x" * 10_000}, {"query": 5}, {"query": "a", "top_k": 0},
     {"query": "a", "top_k": 100000}, {"query": "a", "bogus": 1}],
)  # fmt: skip
def test_bad_input_against_the_real_system_is_4xx(api: httpx.Client, body: dict) -> None:
    response = api.post("/v1/synthesize", json=body)
    assert response.status_code == 422 and response.json()["detail"]


def test_invalid_utf8_and_non_json_are_4xx(api: httpx.Client) -> None:
    for raw in (b'{"query": "\xff drill"}', b"query=drill"):
        response = api.post("/v1/synthesize", content=raw, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500


def test_ready_and_metrics(api: httpx.Client, first: dict) -> None:
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"rewriter": True, "retriever": True, "judge": True, "redis": True}
    metrics = api.get("/metrics").text
    assert 'tailsynth_gateway_cache_total{result="miss"}' in metrics
    assert "tailsynth_gateway_stage_duration_seconds_bucket" in metrics
