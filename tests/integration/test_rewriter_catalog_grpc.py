"""The rewriter gRPC server with only the catalog engine (no LLM): a real process on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import grpc
import pytest

from services.core.health import SERVING, health_status, wait_serving
from services.core.redis_server import free_port
from services.gen.synth.v1 import common_pb2, rewriter_pb2, rewriter_pb2_grpc

CATALOG = """id,title,category,brand
D1,Voltra 20V Cordless Drill/Driver Kit,Tools > Drills,Voltra
D2,Torqwell 18V Cordless Drill with Battery,Tools > Drills,Torqwell
D3,Voltra Cordless Hammer Drill,Tools > Drills,Voltra
P1,"Velvet Throw Pillow, Turquoise",Decor > Pillows,Halvard
P2,"Cotton Throw Pillow, Turquoise",Decor > Pillows,Loomhaven
"""


@pytest.fixture(scope="module")
def rewriter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    state = tmp_path_factory.mktemp("state")
    catalog = state / "catalog.csv"
    catalog.write_text(CATALOG)
    port = free_port()
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state),
        "TAILSYNTH_REWRITER_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_REWRITER_ENGINES": "catalog",
        "TAILSYNTH_REWRITER_CATALOG": str(catalog),
        "TAILSYNTH_REWRITER_HEALTH_INTERVAL_S": "0.5",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.rewriter"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    wait_serving(f"127.0.0.1:{port}", 60, process=process, interval_s=0.05, what="rewriter")
    yield channel
    channel.close()
    process.terminate()
    process.wait(30)


def test_catalog_candidates_through_the_servicer(rewriter: grpc.Channel) -> None:
    stub = rewriter_pb2_grpc.RewriterStub(rewriter)
    reply = stub.Rewrite(
        rewriter_pb2.RewriteRequest(
            query="cordles dril", num_rewrites=1, feedback=["Voltra Cordless Hammer Drill", "Torqwell Drill"]
        ),
        timeout=10,
    )
    assert [(c.text, c.source) for c in reply.candidates] == [("cordless drill", "catalog:spell")]
    assert reply.engine == "catalog" and reply.generated_tokens == 0 and not reply.failures
    # PRF from the titles reached the same text: the engine reports it as a duplicate.
    assert [(d.text, d.reason) for d in reply.dropped] == [("cordless drill", "duplicate (catalog:prf)")]

    reply = stub.Rewrite(rewriter_pb2.RewriteRequest(query="turquoise velvet throw pillow", num_rewrites=1))
    assert [(c.text, c.source) for c in reply.candidates] == [("turquoise throw pillow", "catalog:relax")]

    info = stub.Describe(common_pb2.DescribeRequest(), timeout=10)
    assert info.engine == "catalog" and info.version.startswith("catalog:catalog-v1:")


def test_health_stays_serving_when_the_probe_query_needs_no_rewrite(rewriter: grpc.Channel) -> None:
    # The health probe asks for rewrites of "drill", which the catalog leaves alone: several idle probe
    # intervals later the server must still say SERVING.
    time.sleep(2.0)
    assert health_status(rewriter) == SERVING


@pytest.mark.parametrize(
    ("feedback", "message"),
    [
        (["Voltra Drill"] * 21, "at most 20 feedback titles"),
        (["Voltra Drill", "x" * 100_000], "feedback[1] is longer than 512 characters"),
    ],
)
def test_oversized_feedback_is_invalid_argument(
    rewriter: grpc.Channel, feedback: list[str], message: str
) -> None:
    stub = rewriter_pb2_grpc.RewriterStub(rewriter)
    with pytest.raises(grpc.RpcError) as error:
        stub.Rewrite(
            rewriter_pb2.RewriteRequest(query="drill", num_rewrites=1, feedback=feedback), timeout=10
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details()


@pytest.mark.parametrize(
    ("damage", "message"),
    [(lambda b: b.replace(b"XXXX", b"\xc3\x28"), "valid UTF-8"), (lambda b: b[:-3], "cannot decode")],
    ids=["invalid-utf8", "truncated"],
)
def test_undecodable_requests_are_invalid_argument(
    rewriter: grpc.Channel, damage: Callable[[bytes], bytes], message: str
) -> None:
    raw = rewriter.unary_unary("/synth.v1.Rewriter/Rewrite", request_serializer=lambda b: b)
    encoded = rewriter_pb2.RewriteRequest(query="drill XXXX", num_rewrites=1).SerializeToString()
    with pytest.raises(grpc.RpcError) as error:
        raw(damage(encoded), timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.value.details() and "Exception" not in error.value.details()
    assert health_status(rewriter) == SERVING
