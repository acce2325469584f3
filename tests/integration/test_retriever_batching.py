"""Real retrievers (MiniLM + FAISS) on free ports: concurrent Search calls, micro-batched, answer exactly
what sequential calls answer; an index built with the PyTorch encoder serves on ONNX Runtime too."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from services.core.encoder import Encoder
from services.core.health import wait_serving
from services.core.redis_server import free_port
from services.gen.synth.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc
from services.retriever.build import build_from_catalog
from services.retriever.config import RetrieverSettings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUERIES = [
    "cordless drill",
    "kitchen sink",
    "navy blue dresser",
    "led string lights outdoor",
    "office chair",
    "loaf pan",
    "barn door hardware",
    "egyptian cotton sheets",
    "patio umbrella",
    "bath vanity light",
    "leather sofa",
    "nightstand with charging",
    "crown molding",
    "parakeet toy",
    "monitor stand",
    "coffee bar cabinet",
]


class Retriever:
    def __init__(self, state_dir: Path, backend: str) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "TAILSYNTH_STATE_DIR": str(state_dir),
            "TAILSYNTH_RETRIEVER_BIND": f"127.0.0.1:{self.port}",
            "TAILSYNTH_RETRIEVER_METRICS_PORT": str(self.metrics_port),
            "TAILSYNTH_RETRIEVER_ENCODER_BACKEND": backend,
            "TAILSYNTH_RETRIEVER_BATCH_WAIT_MS": "20",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.retriever"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = retriever_pb2_grpc.RetrieverStub(self.channel)

    def wait_serving(self, timeout_s: float = 300) -> None:
        wait_serving(
            f"127.0.0.1:{self.port}", timeout_s, process=self.process, interval_s=0.1, what="retriever"
        )

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not exported")

    def stop(self) -> None:
        self.channel.close()
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    with (ROOT / "data" / "demo" / "catalog.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row, _ in zip(csv.DictReader(handle), range(400), strict=False)]
    catalog = state / "catalog.csv"
    with catalog.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    build_from_catalog(RetrieverSettings(state_dir=state), catalog, Encoder(device="cpu", backend="torch"))
    return state


@pytest.fixture(scope="module")
def retrievers(state_dir: Path) -> Iterator[dict[str, Retriever]]:
    running = {backend: Retriever(state_dir, backend) for backend in ("onnx", "torch")}
    try:
        for retriever in running.values():
            retriever.wait_serving()
        yield running
    finally:
        for retriever in running.values():
            retriever.stop()


def request(i: int) -> retriever_pb2.SearchRequest:
    """Calls that differ in texts and in top_k."""
    return retriever_pb2.SearchRequest(
        texts=[QUERIES[i % len(QUERIES)], QUERIES[(i * 7 + 3) % len(QUERIES)]], top_k=(3, 5, 10)[i % 3]
    )


def assert_same_hits(a: retriever_pb2.HitList, b: retriever_pb2.HitList, tolerance: float = 1e-4) -> None:
    """Same scores; same products, except that two products tied within float noise may swap."""
    assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=tolerance)
    b_scores = {h.product.id: h.score for h in b.hits}
    for x, y in zip(a.hits, b.hits, strict=True):
        if x.product.id != y.product.id:
            tied = abs(x.score - y.score) < tolerance
            assert tied and (
                x.product.id not in b_scores or abs(b_scores[x.product.id] - x.score) < tolerance
            )


def test_concurrent_search_calls_are_batched_and_answer_like_sequential_ones(
    retrievers: dict[str, Retriever],
) -> None:
    retriever = retrievers["onnx"]
    requests = [request(i) for i in range(24)]
    sequential = [retriever.stub.Search(r, timeout=60) for r in requests]
    batches_before = retriever.metric("tailsynth_retriever_search_batch_requests_count")
    calls_before = retriever.metric("tailsynth_retriever_search_batch_requests_sum")
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        concurrent = list(pool.map(lambda r: retriever.stub.Search(r, timeout=60), requests))
    for lone, together in zip(sequential, concurrent, strict=True):
        assert len(lone.results) == len(together.results) == 2
        for a, b in zip(lone.results, together.results, strict=True):
            assert_same_hits(a, b)
    batches = retriever.metric("tailsynth_retriever_search_batch_requests_count") - batches_before
    calls = retriever.metric("tailsynth_retriever_search_batch_requests_sum") - calls_before
    assert calls == len(requests)
    assert batches < len(requests), "24 concurrent calls never shared a batch"
    first = sequential[0].results[0].hits[0].product
    assert "drill" in first.title.lower()


def test_an_index_built_with_torch_serves_the_same_hits_on_onnx(retrievers: dict[str, Retriever]) -> None:
    describe = {
        name: r.stub.Describe(common_pb2.DescribeRequest(), timeout=10) for name, r in retrievers.items()
    }
    assert describe["onnx"].version == describe["torch"].version  # same index, same encoder fingerprint
    for i in range(len(QUERIES)):
        onnx, torch = (retrievers[name].stub.Search(request(i), timeout=60) for name in ("onnx", "torch"))
        for a, b in zip(onnx.results, torch.results, strict=True):
            assert_same_hits(a, b, tolerance=2e-3)
