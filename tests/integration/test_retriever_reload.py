"""Hot reload under load: a real retriever server keeps answering while `synth index add/remove` publish
new versions, and while `synth index build --model` switches it to another encoder; no request fails,
the new versions are served afterwards, and every answer was encoded by its own version's model.

The module runs the PyTorch encoder backend: the ONNX export per model (tested on its own) would add
an export for each model here without testing anything about reloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.core.assets import minilm_path
from services.core.durable import write_bytes
from services.core.encoder import Encoder
from services.core.health import wait_serving
from services.core.index_layout import CURRENT
from services.core.redis_server import free_port
from services.gen.synth.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc
from services.retriever.build import build_from_catalog
from services.retriever.config import RetrieverSettings
from services.retriever.index import load_version, read_manifest
from services.retriever.model import recorded_model_dir

pytestmark = pytest.mark.slow

CATALOG = """id,title,category
D1,Voltra 20V Cordless Drill/Driver Kit,Tools > Drills
D2,Screwvale #8 x 2 in. Exterior Deck Screws (1 lb.),Hardware > Deck Screws
D3,Aquavell Digital Bath Thermometer for Baby Tub,Bath > Baby
D4,Halvard & Pine Turquoise Velvet Throw Pillow,Decor > Pillows
D5,Brightwell 60W Equivalent LED Light Bulb (4-Pack),Lighting > Bulbs
"""
ADDED = "id,title,category\nN1,Glowmaster Solar Garden Lantern (2-Pack),Outdoor > Lighting\n"
CLIENTS = 4
LOAD_QUERY = "cordless drill for deck screws"
DEADLINE_S = 180


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    (state / "catalog.csv").write_text(CATALOG)
    build_from_catalog(RetrieverSettings(state_dir=state, encoder_backend="torch"), state / "catalog.csv")
    return state


def env(state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state_dir),
        "TAILSYNTH_RETRIEVER_ENCODER_BACKEND": "torch",
        **extra,
    }


@pytest.fixture(scope="module")
def channel(state_dir: Path) -> Iterator[grpc.Channel]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.retriever"],
        env=env(
            state_dir,
            TAILSYNTH_RETRIEVER_BIND=f"127.0.0.1:{port}",
            TAILSYNTH_RETRIEVER_RELOAD_INTERVAL_S="0.2",
            TAILSYNTH_RETRIEVER_HEALTH_INTERVAL_S="1",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    wait_serving(f"127.0.0.1:{port}", DEADLINE_S, process=process, interval_s=0.1, what="retriever")
    yield channel
    channel.close()
    process.terminate()
    process.wait(30)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(process.stdout.read().decode() if process.stdout else "server exited")
        assert time.monotonic() < deadline, f"condition not met within {DEADLINE_S}s"
        time.sleep(0.1)


def synth(state_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "index", *args],
        env=env(state_dir),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def search(stub: retriever_pb2_grpc.RetrieverStub, text: str, top_k: int = 5) -> tuple[str, list[str]]:
    reply = stub.Search(retriever_pb2.SearchRequest(texts=[text], top_k=top_k), timeout=30)
    return reply.index_version, [hit.product.id for hit in reply.results[0].hits]


def describe(stub: retriever_pb2_grpc.RetrieverStub) -> dict[str, str]:
    return dict(stub.Describe(common_pb2.DescribeRequest(), timeout=10).details)


class SearchLoad:
    """Clients searching in a loop; every failure and every index version seen is recorded."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = retriever_pb2_grpc.RetrieverStub(channel)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.versions: set[str] = set()
        self.scores: dict[str, list[list[float]]] = {}  # per answering version: each answer's scores
        self.calls = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(CLIENTS)]

    def client(self) -> None:
        while not self.stop.is_set():
            try:
                reply = self.stub.Search(retriever_pb2.SearchRequest(texts=[LOAD_QUERY], top_k=5), timeout=30)
            except grpc.RpcError as error:
                with self.lock:
                    self.failures.append(f"{error.code()}: {error.details()}")
                continue
            with self.lock:
                self.calls += 1
                self.versions.add(reply.index_version)
                self.scores.setdefault(reply.index_version, []).append(
                    [hit.score for hit in reply.results[0].hits]
                )
            time.sleep(0.01)  # leave CPU for the index updates running beside the clients

    def __enter__(self) -> SearchLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def test_add_and_remove_are_served_without_a_single_failed_request(
    channel: grpc.Channel, state_dir: Path, tmp_path: Path
) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(channel)
    first, _ = search(stub, "solar garden lantern")
    (tmp_path / "added.csv").write_text(ADDED)
    (tmp_path / "removed.txt").write_text("D1\nD1\nNOT-A-PRODUCT\n")

    with SearchLoad(channel) as load:
        assert "added 1" in synth(state_dir, "add", "--catalog", str(tmp_path / "added.csv"))
        wait_for(lambda: search(stub, "solar garden lantern", 1)[1] == ["N1"])
        second = describe(stub)["index_version"]
        printed = synth(state_dir, "remove", "--ids", str(tmp_path / "removed.txt"))
        assert "removed 1, duplicate lines 1, unknown ids 1 (NOT-A-PRODUCT)" in printed
        wait_for(lambda: describe(stub)["index_version"] != second)

    assert load.failures == [] and load.calls > 0
    assert first in load.versions and len(load.versions) >= 2  # the clients saw the swap happen
    version, hits = search(stub, "cordless drill", 10)
    assert version == describe(stub)["index_version"] == (state_dir / "index" / CURRENT).read_text()
    assert "D1" not in hits and "N1" in hits and len(hits) == 5  # 5 products: D2-D5 and N1


def test_a_broken_version_is_not_served_and_the_old_one_keeps_answering(
    channel: grpc.Channel, state_dir: Path
) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(channel)
    root = state_dir / "index"
    good = (root / CURRENT).read_text()
    broken = root / "20990101T000000Z-broken"
    broken.mkdir()
    for name in ("manifest.json", "products.jsonl", "labels.npy"):
        (broken / name).write_bytes((root / good / name).read_bytes())
    (broken / "index.faiss").write_bytes(b"truncated")
    write_bytes(root / CURRENT, broken.name.encode())
    try:
        wait_for(lambda: broken.name in describe(stub)["reload_error"])
        assert describe(stub)["index_version"] == good
        version, hits = search(stub, "baby bath thermometer", 1)
        assert (version, hits) == (good, ["D3"])
    finally:
        write_bytes(root / CURRENT, good.encode())


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for a fine-tuned model: MiniLM saved with its last layer's output projection scaled, so
    its embeddings and fingerprint differ from the packaged model's (what training would change)."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_path()), device="cpu")
    with torch.no_grad():
        model[0].auto_model.encoder.layer[-1].output.dense.weight.mul_(3.0)
    path = tmp_path_factory.mktemp("trained") / "retriever-model"
    model.save(str(path))
    return path


def encoder_for(model_dir: Path | None) -> Encoder:
    return Encoder(path=model_dir, device="cpu", backend="torch")


def top_scores(encoder: Encoder, version_dir: Path, text: str) -> list[float]:
    """The top-5 scores of `text` embedded by `encoder` in the index version in `version_dir`."""
    index = load_version(version_dir, read_manifest(version_dir)["encoder"])
    return [score for _, score in index.search(encoder.encode([text]), 5)[0]]


def test_switching_to_an_index_built_with_another_model_serves_both_halves_together(
    channel: grpc.Channel, state_dir: Path, trained_model: Path
) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(channel)
    root = state_dir / "index"
    old = (root / CURRENT).read_text()
    old_describe = stub.Describe(common_pb2.DescribeRequest(), timeout=10)
    assert old_describe.details["model"].startswith("all-MiniLM-L6-v2")

    with SearchLoad(channel) as load:
        printed = synth(
            state_dir, "build", "--catalog", str(state_dir / "catalog.csv"), "--model", str(trained_model)
        )
        new = (root / CURRENT).read_text()
        assert new != old and new in printed
        wait_for(lambda: describe(stub)["index_version"] == new)
        wait_for(lambda: new in load.versions)  # searches answered by the new pair, under load

    assert load.failures == [] and {old, new} <= load.versions
    manifest = read_manifest(root / new)
    assert manifest["model_dir"] == str(trained_model.resolve())
    info = stub.Describe(common_pb2.DescribeRequest(), timeout=10)
    assert info.details["model"] == str(trained_model.resolve())
    assert info.details["encoder"] == manifest["encoder"] != old_describe.details["encoder"]
    assert info.version == f"{new}/{manifest['encoder']}" != old_describe.version

    # Every answer, before and after the swap, is its own version's model searching its own index.
    packaged, trained = encoder_for(None), encoder_for(trained_model)
    encoders = {None: packaged, trained_model.resolve(): trained}
    for version, answers in load.scores.items():
        expected = top_scores(
            encoders[recorded_model_dir(read_manifest(root / version))], root / version, LOAD_QUERY
        )
        for scores in answers:
            assert scores == pytest.approx(expected, abs=1e-4), version
    # ... and a mixed pair would have been caught: the other model's query scores differently.
    mixed = top_scores(packaged, root / new, LOAD_QUERY)
    assert np.abs(np.array(mixed) - np.array(load.scores[new][0])).max() > 1e-2
    version, _ = search(stub, LOAD_QUERY)
    assert version == new


def test_a_version_whose_model_does_not_load_is_refused_and_the_served_pair_keeps_answering(
    channel: grpc.Channel, state_dir: Path, tmp_path: Path
) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(channel)
    root = state_dir / "index"
    good = (root / CURRENT).read_text()
    before = stub.Describe(common_pb2.DescribeRequest(), timeout=10).version
    lost = root / "20990101T000000Z-lost-model"
    lost.mkdir()
    for name in ("products.jsonl", "labels.npy", "index.faiss"):
        (lost / name).write_bytes((root / good / name).read_bytes())
    manifest = read_manifest(root / good) | {"version": lost.name, "model_dir": str(tmp_path / "gone")}
    (lost / "manifest.json").write_text(json.dumps(manifest))
    expected = search(stub, LOAD_QUERY)
    write_bytes(root / CURRENT, lost.name.encode())
    try:
        wait_for(lambda: lost.name in describe(stub)["reload_error"])
        assert "gone does not exist" in describe(stub)["reload_error"]
        assert stub.Describe(common_pb2.DescribeRequest(), timeout=10).version == before
        assert search(stub, LOAD_QUERY) == expected == (good, expected[1])
    finally:
        write_bytes(root / CURRENT, good.encode())
