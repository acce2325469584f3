"""Real retriever and judge servers (real MiniLM, real FAISS) as separate processes on free ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.core.health import NOT_SERVING, SERVING, health_status, wait_serving
from services.core.index_layout import current_version_dir
from services.core.redis_server import free_port
from services.gen.synth.v1 import judge_pb2, judge_pb2_grpc, retriever_pb2, retriever_pb2_grpc
from services.retriever.build import build_from_catalog
from services.retriever.config import RetrieverSettings

pytestmark = pytest.mark.slow

CATALOG = """id,title,category
D1,Voltra 20V Cordless Drill/Driver Kit,Tools > Drills
D2,Screwvale #8 x 2 in. Exterior Deck Screws (1 lb.),Hardware > Deck Screws
D3,Aquavell Digital Bath Thermometer for Baby Tub,Bath > Baby
D4,Halvard & Pine Turquoise Velvet Throw Pillow,Decor > Pillows
D5,Brightwell 60W Equivalent LED Light Bulb (4-Pack),Lighting > Bulbs
"""


def start(service: str, port: int, state_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state_dir),
        f"TAILSYNTH_{service.upper()}_BIND": f"127.0.0.1:{port}",
        f"TAILSYNTH_{service.upper()}_HEALTH_INTERVAL_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def serving_transitions(
    servers: dict[str, tuple[grpc.Channel, subprocess.Popen[bytes]]], timeout_s: float = 180
) -> dict[str, list[int | None]]:
    """Poll every server together until all are SERVING; return each one's sequence of health states."""
    seen: dict[str, list[int | None]] = {name: [] for name in servers}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for name, (channel, process) in servers.items():
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            status = health_status(channel)
            if not seen[name] or seen[name][-1] != status:
                seen[name].append(status)
        if all(states[-1] == SERVING for states in seen.values()):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not SERVING after {timeout_s}s: {seen}")


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("state")
    catalog = state / "catalog.csv"
    catalog.write_text(CATALOG)
    build_from_catalog(RetrieverSettings(state_dir=state), catalog)
    return state


@pytest.fixture(scope="module")
def servers(
    state_dir: Path,
) -> Iterator[dict[str, tuple[grpc.Channel, subprocess.Popen[bytes], list[int | None]]]]:
    running = {}
    for service in ("retriever", "judge"):
        port = free_port()
        running[service] = (grpc.insecure_channel(f"127.0.0.1:{port}"), start(service, port, state_dir))
    transitions = serving_transitions(running)
    out = {name: (ch, proc, transitions[name]) for name, (ch, proc) in running.items()}
    yield out
    for channel, process, _ in out.values():
        channel.close()
        process.terminate()
        process.wait(30)


def test_health_is_not_serving_until_the_model_is_loaded(servers: dict) -> None:
    for name, (_, _, transitions) in servers.items():
        assert transitions[-1] == SERVING, name
        assert NOT_SERVING in transitions, f"{name} never said NOT_SERVING: {transitions}"


def test_batch_search_returns_relevant_products_in_order(servers: dict) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(servers["retriever"][0])
    reply = stub.Search(
        retriever_pb2.SearchRequest(texts=["cordless drill", "baby bath thermometer"], top_k=2), timeout=10
    )
    assert [h.product.id for h in reply.results[0].hits][0] == "D1"
    assert [h.product.id for h in reply.results[1].hits][0] == "D3"
    assert reply.results[0].hits[0].score >= reply.results[0].hits[1].score
    # k larger than the catalog returns the whole catalog, no padding
    big = stub.Search(retriever_pb2.SearchRequest(texts=["drill"], top_k=500), timeout=10)
    assert len(big.results[0].hits) == 5


@pytest.mark.parametrize(
    ("texts", "top_k", "message"),
    [
        ([], 5, "texts is empty"),
        (["drill"], 0, "top_k must be between 1"),
        (["drill"], 100_000, "top_k must be between 1"),
        (["drill", "  "], 5, "texts[1] is empty"),
        (["drill"] * 10_000, 5, "the limit is 256"),
    ],
)
def test_bad_search_requests_are_invalid_argument(
    servers: dict, texts: list[str], top_k: int, message: str
) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(servers["retriever"][0])
    with pytest.raises(grpc.RpcError) as error:
        stub.Search(retriever_pb2.SearchRequest(texts=texts, top_k=top_k), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda b: b.replace(b"XXXX", b"\xc3\x28"), "valid UTF-8"), (lambda b: b[:-3], "cannot decode")],
    ids=["invalid-utf8", "truncated"],
)
def test_undecodable_search_requests_are_invalid_argument(
    servers: dict, damage: Callable[[bytes], bytes], message: str
) -> None:
    channel = servers["retriever"][0]
    raw = channel.unary_unary("/synth.v1.Retriever/Search", request_serializer=lambda b: b)
    encoded = retriever_pb2.SearchRequest(texts=["drill XXXX"], top_k=3).SerializeToString()
    with pytest.raises(grpc.RpcError) as error:
        raw(damage(encoded), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details() and "Exception" not in error.value.details()
    assert health_status(channel) == SERVING


def test_deadlines_are_honoured(servers: dict) -> None:
    stub = retriever_pb2_grpc.RetrieverStub(servers["retriever"][0])
    with pytest.raises(grpc.RpcError) as error:
        stub.Search(retriever_pb2.SearchRequest(texts=["drill " * 50] * 256, top_k=5), timeout=0.01)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # the server is still fine afterwards
    assert stub.Search(retriever_pb2.SearchRequest(texts=["drill"], top_k=1), timeout=60).results


def test_judge_scores_relevant_above_irrelevant_and_applies_the_policy(servers: dict) -> None:
    stub = judge_pb2_grpc.JudgeStub(servers["judge"][0])
    kind_p, kind_r = judge_pb2.PAIR_KIND_QUERY_PRODUCT, judge_pb2.PAIR_KIND_QUERY_REWRITE
    pairs = [
        judge_pb2.JudgePair(query="cordless drill", text="Voltra 20V Cordless Drill/Driver Kit", kind=kind_p),
        judge_pb2.JudgePair(query="cordless drill", text="Turquoise Velvet Throw Pillow", kind=kind_p),
        judge_pb2.JudgePair(query="cordless drill", text="battery powered drill", kind=kind_r),
        judge_pb2.JudgePair(query="cordless drill", text="turmeric pillows", kind=kind_r),
    ]
    reply = stub.Judge(judge_pb2.JudgeRequest(pairs=pairs), timeout=10)
    relevant, irrelevant, good_rewrite, drifted = reply.judgments
    assert 0 <= irrelevant.score < relevant.score <= 1
    assert relevant.accepted and not irrelevant.accepted
    assert irrelevant.label == judge_pb2.RELEVANCE_LABEL_IRRELEVANT
    assert good_rewrite.accepted and not drifted.accepted
    assert "threshold" in drifted.reason
    assert reply.judge_version.startswith("embedding:")


def test_bad_judge_requests_are_invalid_argument(servers: dict) -> None:
    stub = judge_pb2_grpc.JudgeStub(servers["judge"][0])
    for request, message in [
        (judge_pb2.JudgeRequest(), "pairs is empty"),
        (judge_pb2.JudgeRequest(pairs=[judge_pb2.JudgePair(query="q", text="t")]), "kind must be"),
        (judge_pb2.JudgeRequest(pairs=[judge_pb2.JudgePair(query=" ", text="t", kind=1)]), "empty query"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            stub.Judge(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in error.value.details()


def test_reflection_lists_the_services(servers: dict) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(servers["retriever"][0])
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"synth.v1.Retriever", "grpc.health.v1.Health"} <= names


def test_an_index_built_with_another_encoder_is_refused(state_dir: Path, tmp_path: Path) -> None:
    bad_state = tmp_path / "state"
    (bad_state / "index").mkdir(parents=True)
    source = current_version_dir(state_dir / "index")
    target = bad_state / "index" / source.name
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    (bad_state / "index" / "CURRENT").write_text(source.name)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["encoder"] = "some-other-model:0000"
    (target / "manifest.json").write_text(json.dumps(manifest))

    process = start("retriever", free_port(), bad_state)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 1
    assert b"was built with encoder 'some-other-model:0000'" in output
    assert b"synth index build" in output


def test_sigterm_stops_gracefully(state_dir: Path) -> None:
    port = free_port()
    process = start("judge", port, state_dir)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    wait_serving(f"127.0.0.1:{port}", 180, process=process, interval_s=0.05, what="judge")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    channel.close()
    assert process.returncode == 0
    assert b"judge stopping: NOT_SERVING" in output and b"judge stopped" in output
