"""Two retriever shards on loopback (real MiniLM, real FAISS Flat, the demo catalog) behind the pipeline's
fan-out: the merged top-k is the unsharded index's top-k, and a shard that is down fails the search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from services.core.catalog import load_catalog
from services.core.encoder import Encoder
from services.core.health import wait_serving
from services.core.index_layout import current_version_dir
from services.core.redis_server import free_port
from services.pipeline.clients import BackendError, ShardedRetriever, retriever_client
from services.pipeline.domain import Hit
from services.retriever.build import build_from_catalog, index_is_current
from services.retriever.config import RetrieverSettings
from services.retriever.index import ProductIndex, load_index

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).resolve().parents[2] / "data" / "demo" / "catalog.csv"
QUERIES = [
    "cordless drill for deck screws",
    "velvet throw pillow",
    "led light bulbs",
    "stainless steel cabinet pulls",
    "dual monitor stand",
    "baby bath thermometer",
]
TOP_K = 10


@dataclass
class Built:
    whole: ProductIndex
    encoder: Encoder
    shard_dirs: list[Path]  # state dir of shard i/2 at position i


@dataclass
class Shards:
    built: Built
    targets: list[str]


def settings(state: Path, shard: str) -> RetrieverSettings:
    return RetrieverSettings(state_dir=state, shard=shard, index_type="flat", device="cpu")


def start_retriever(state: Path, shard: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state),
        "TAILSYNTH_RETRIEVER_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_RETRIEVER_SHARD": shard,
        "TAILSYNTH_RETRIEVER_DEVICE": "cpu",
        "TAILSYNTH_RETRIEVER_HEALTH_INTERVAL_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.retriever"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    encoder = Encoder(device="cpu")
    root = tmp_path_factory.mktemp("shards")
    build_from_catalog(settings(root / "whole", "0/1"), CATALOG, encoder)
    shard_dirs = [root / f"shard-{i}" for i in range(2)]
    for i, state in enumerate(shard_dirs):
        build_from_catalog(settings(state, f"{i}/2"), CATALOG, encoder)
    whole = load_index(root / "whole" / "index", encoder.fingerprint)
    return Built(whole, encoder, shard_dirs)


@pytest.fixture(scope="module")
def shards(built: Built) -> Iterator[Shards]:
    ports = [free_port(), free_port()]
    processes = [
        start_retriever(state, f"{i}/2", port)
        for i, (state, port) in enumerate(zip(built.shard_dirs, ports, strict=True))
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_serving(f"127.0.0.1:{port}", 300, process=process, what=f"retriever on {port}")
        yield Shards(built, [f"127.0.0.1:{port}" for port in ports])
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)


@pytest.fixture
async def fanout(shards: Shards) -> AsyncIterator[ShardedRetriever]:
    client = retriever_client(shards.targets, 60.0)
    assert isinstance(client, ShardedRetriever)
    yield client
    await client.close()


def unsharded(built: Built, texts: list[str], top_k: int) -> list[list[tuple[str, float]]]:
    results = built.whole.search(built.encoder.encode(texts), top_k)
    return [[(product.id, score) for product, score in hits] for hits in results]


def assert_same(merged: list[Hit], expected: list[tuple[str, float]]) -> None:
    assert [h.product_id for h in merged] == [pid for pid, _ in expected]
    for hit, (_, score) in zip(merged, expected, strict=True):
        assert hit.score == pytest.approx(score, abs=1e-4)


def test_each_shard_index_holds_its_part_of_the_catalog(built: Built) -> None:
    catalog = {p.id for p in load_catalog(CATALOG)}
    parts = []
    for i, state in enumerate(built.shard_dirs):
        directory = current_version_dir(state / "index")
        manifest = json.loads((directory / "manifest.json").read_text())
        assert manifest["shard"] == f"{i}/2"
        lines = (directory / "products.jsonl").read_text().splitlines()
        parts.append({json.loads(line)["id"] for line in lines})
        assert manifest["count"] == len(lines)
        assert index_is_current(settings(state, f"{i}/2"), CATALOG)
        assert not index_is_current(settings(state, "0/1"), CATALOG), "a shard is not the whole catalog"
    assert parts[0] | parts[1] == catalog
    assert not parts[0] & parts[1]
    assert min(len(part) for part in parts) > len(catalog) / 3


async def test_merged_top_k_is_the_unsharded_top_k(built: Built, fanout: ShardedRetriever) -> None:
    for query in QUERIES:
        (merged,) = await fanout.search([query], TOP_K)
        assert_same(merged, unsharded(built, [query], TOP_K)[0])
    # several texts in one call merge per text
    merged_batch = await fanout.search(QUERIES[:3], 3)
    for merged, expected in zip(merged_batch, unsharded(built, QUERIES[:3], 3), strict=True):
        assert_same(merged, expected)
    # the service's largest top_k: long lists from both shards, cut to top_k after the merge
    (deep,) = await fanout.search([QUERIES[0]], 1000)
    assert len(deep) == 1000
    assert_same(deep, unsharded(built, [QUERIES[0]], 1000)[0])


async def test_both_shards_answer_each_search(built: Built, shards: Shards) -> None:
    """The merge really draws on both shards (a broken fan-out asking shard 0 twice would fail here)."""
    owner = {}
    for i, state in enumerate(built.shard_dirs):
        lines = (current_version_dir(state / "index") / "products.jsonl").read_text().splitlines()
        owner.update({json.loads(line)["id"]: i for line in lines})
    client = retriever_client(shards.targets, 60.0)
    try:
        results = await client.search(QUERIES, TOP_K)
    finally:
        await client.close()
    assert {owner[h.product_id] for hits in results for h in hits} == {0, 1}


async def test_health_and_describe_cover_every_shard(
    built: Built, shards: Shards, fanout: ShardedRetriever
) -> None:
    assert await fanout.healthy()
    info = await fanout.describe()
    assert info.service == "retriever" and info.engine == "faiss-flat"
    assert info.details["shards"] == "2"
    assert int(info.details["products"]) == len(built.whole.products)
    assert info.version.startswith("0/2=") and ";1/2=" in info.version

    swapped = retriever_client(list(reversed(shards.targets)), 60.0)
    try:
        with pytest.raises(BackendError) as error:
            await swapped.describe()
    finally:
        await swapped.close()
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    # both positions are wrong; whichever answers first is named
    first, second = shards.targets
    message = str(error.value)
    assert (
        f"shard 0/2 at {second}" in message and "serves shard 1/2 of the catalog, expected 0/2" in message
    ) or (
        f"shard 1/2 at {first}" in message and "serves shard 0/2 of the catalog, expected 1/2" in message
    ), message

    # one shard behind a single target would silently serve half the catalog
    alone = retriever_client(shards.targets[:1], 60.0)
    try:
        with pytest.raises(BackendError, match="serves shard 0/2 of the catalog, expected 0/1"):
            await alone.describe()
    finally:
        await alone.close()


async def test_a_shard_that_is_down_fails_the_search_and_is_named(shards: Shards) -> None:
    down = f"127.0.0.1:{free_port()}"
    client = retriever_client([shards.targets[0], down], 10.0)
    try:
        assert not await client.healthy(timeout_s=2.0)
        with pytest.raises(BackendError) as error:
            await client.search([QUERIES[0]], TOP_K)
    finally:
        await client.close()
    assert error.value.service == "retriever"
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    assert f"shard 1/2 at {down}" in str(error.value)


def test_a_retriever_refuses_an_index_built_for_another_shard(built: Built) -> None:
    process = start_retriever(built.shard_dirs[0], "1/2", free_port())
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 1, output.decode()
    assert b"holds shard 0/2 of the catalog but this retriever serves shard 1/2" in output
