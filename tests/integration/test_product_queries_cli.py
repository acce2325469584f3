"""Queries generated from products on the running system (real SmolLM2 rewriter): `synth synthesize
--from-catalog` journals, resumes and skips; the store holds the pairs under origin product:<id>:<style>,
the source pair of every kept query among them; what the LLM wrote that is garbage is counted, not stored."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import grpc
import pytest
import redis

from services.cli.main import main
from services.cli.system import LocalSystem
from services.core.text import normalize_query
from services.gen.synth.v1 import common_pb2, rewriter_pb2, rewriter_pb2_grpc

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "catalog.csv"
DEMO_IDS = ("DEMO-000002", "DEMO-000004")
REASONS = {"empty", "copy_of_title", "too_long", "not_text", "duplicate", "no_typo", "round_trip_failed"}


def stream(system: LocalSystem) -> list[dict[str, str]]:
    client = redis.Redis.from_url(system.redis_url or "", decode_responses=True)
    return [fields for _, fields in client.xrange("tailsynth:pairs")]


def small_catalog(tmp_path: Path) -> Path:
    """Two demo products (the index serves them) and a row without a title."""
    with DEMO.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["id"] in DEMO_IDS]
    path = tmp_path / "catalog.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows([*rows, {**rows[0], "id": "NO-TITLE", "title": ""}])
    return path


async def test_an_unknown_prompt_is_invalid_argument_naming_the_available_ones(
    live_system: LocalSystem,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{live_system.ports.rewriter}") as channel:
        stub = rewriter_pb2_grpc.RewriterStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Rewrite(
                rewriter_pb2.RewriteRequest(query="drill", num_rewrites=1, prompt="nope"), timeout=30
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("unknown prompt 'nope'; available: product_attributes_v1")
        product = common_pb2.Product(id="DEMO-000002", title="Deskwright Dual Monitor Stand")
        asked = rewriter_pb2.RewriteRequest(
            num_rewrites=3, prompt="product_keywords_v1", product=product, seed=1
        )
        reply = await stub.Rewrite(asked, timeout=120)
    assert reply.candidates or reply.dropped
    assert {c.source for c in reply.candidates} <= {"llm:hf"}  # the catalog engine writes no product queries
    assert all(normalize_query(c.text) != normalize_query(product.title) for c in reply.candidates)


def test_queries_from_catalog_products_are_stored_with_their_origin_and_a_rerun_skips_them(
    live_system: LocalSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_catalog(tmp_path)
    journal = tmp_path / "journal.jsonl"
    args = [
        "synthesize", "--from-catalog", str(path), "--url", live_system.gateway_url, "--journal", str(journal),
        "--styles", "keywords,need,misspelled", "--queries-per-style", "2", "--num-rewrites", "1",
        "--top-k", "10", "--concurrency", "2", "--seed", "3",
    ]  # fmt: skip
    before = len(stream(live_system))
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "skipping 1 rows (1 with empty title)" in err
    assert "2 products synthesized, 0 skipped" in out and "1 rows skipped (1 empty title)" in out
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(line["product_id"] for line in lines) == sorted(DEMO_IDS)
    assert all(line["status"] == 200 for line in lines)
    for line in lines:  # every generated query is kept or dropped with a known reason
        assert line["generated"] == line["kept"] + sum(line["dropped"].values())
        assert set(line["dropped"]) <= REASONS
        assert set(line["generated_by_style"]) == {"keywords", "need", "misspelled"}
    generated = sum(line["generated"] for line in lines)
    kept = sum(line["kept"] for line in lines)
    match = re.search(r"queries: (\d+) generated, (\d+) kept", out)
    assert match and (int(match[1]), int(match[2])) == (generated, kept)
    assert kept > 0, out

    entries = stream(live_system)[before:]
    pairs = [e for e in entries if e.get("kind", "pair") == "pair"]
    records = [e for e in entries if e.get("kind") == "rewrites"]
    assert len(pairs) == sum(line["new"] for line in lines) > 0
    assert {e["origin"].rsplit(":", 2)[0] for e in entries} == {"product"}
    assert {e["origin"].split(":")[1] for e in entries} <= set(DEMO_IDS)
    titles = {row["id"]: row["title"] for row in csv.DictReader(DEMO.open(newline=""))}
    # Each kept query's (query, source product) pair is stored, accepted; no garbage is among them.
    sources = [p for p in pairs if p["product_id"] == p["origin"].split(":")[1]]
    assert len(sources) == kept
    for pair in sources:
        assert pair["origin"].split(":")[2] in {"keywords", "need", "misspelled"}
        assert pair["query"].strip()
        assert normalize_query(pair["query"]) != normalize_query(titles[pair["product_id"]])
    assert 0 < len(records) <= kept  # a synthesis without rewrites or drops writes no record
    for record in records:
        product_id = record["origin"].split(":")[1]
        judged = {j["product_id"]: j for j in json.loads(record["judged"])}
        assert judged[product_id]["accepted"] is True  # the round trip made it a positive

    # Resumed: both products were done under this pipeline version; nothing is generated again.
    assert main(args) == 0
    out, _ = capsys.readouterr()
    assert "0 products synthesized, 2 skipped" in out
    assert len(journal.read_text().splitlines()) == 2 and len(stream(live_system)) == before + len(entries)
