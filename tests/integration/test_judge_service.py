"""A real judge server (MiniLM embedding judge + lexical judge, real Redis cache) as its own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from services.core.health import wait_serving
from services.core.redis_server import EmbeddedRedis, free_port
from services.gen.synth.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, KindRule, Mode
from services.judge.policy_file import save_policy

pytestmark = pytest.mark.slow

PRODUCT, REWRITE = judge_pb2.PAIR_KIND_QUERY_PRODUCT, judge_pb2.PAIR_KIND_QUERY_REWRITE
POLICY = AcceptancePolicy(
    {
        PairKind.QUERY_PRODUCT: KindRule(Mode.ALL, 0.7, {"lexical": 0.3}),
        PairKind.QUERY_REWRITE: KindRule(Mode.ENSEMBLE, 0.75, {}, {"embedding": 3.0, "lexical": 1.0}),
    }
)


class Judge:
    def __init__(self, channel: grpc.Channel, metrics_port: int) -> None:
        self.stub = judge_pb2_grpc.JudgeStub(channel)
        self.channel = channel
        self.metrics_port = metrics_port

    def metric(self, name: str, **labels: str) -> float:
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        )
        wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[Judge]:
    state = tmp_path_factory.mktemp("judge-state")
    save_policy(POLICY, state / "policy.json", provenance={"by": "test"})
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state),
        "TAILSYNTH_JUDGE_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_JUDGE_METRICS_PORT": str(metrics_port),
        "TAILSYNTH_JUDGE_ENGINES": "embedding,lexical",
        "TAILSYNTH_JUDGE_POLICY_FILE": str(state / "policy.json"),
        "TAILSYNTH_JUDGE_CACHE_URL": redis_server.url,
        "TAILSYNTH_JUDGE_BATCH_WAIT_MS": "30",
        "TAILSYNTH_JUDGE_HEALTH_INTERVAL_S": "300",  # no probe in the batch counts
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.judge"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    wait_serving(f"127.0.0.1:{port}", 180, process=process, interval_s=0.1, what="judge")
    yield Judge(channel, metrics_port)
    channel.close()
    process.terminate()
    process.wait(30)


def pairs(*items: tuple[str, str, int]) -> judge_pb2.JudgeRequest:
    return judge_pb2.JudgeRequest(pairs=[judge_pb2.JudgePair(query=q, text=t, kind=k) for q, t, k in items])


def test_two_judges_score_every_pair_under_the_policy_file(judge: Judge) -> None:
    info = judge.stub.Describe(common_pb2.DescribeRequest(), timeout=10)
    assert info.engine == "embedding,lexical"
    assert info.details["policy"] == POLICY.describe() and info.details["cache"] == "on"
    reply = judge.stub.Judge(
        pairs(
            ("cordless drill", "Voltra 20V Cordless Drill/Driver Kit", PRODUCT),
            ("cordless drill", "battery powered drill driver", PRODUCT),
            ("cordless drill", "Turquoise Velvet Throw Pillow", PRODUCT),
            ("cordless drill", "battery powered drill", REWRITE),
        ),
        timeout=30,
    )
    exact, no_shared_term, pillow, rewrite = reply.judgments
    for j in reply.judgments:
        assert [e.engine for e in j.engine_scores] == ["embedding", "lexical"]
    assert exact.accepted and exact.label == judge_pb2.RELEVANCE_LABEL_EXACT
    assert {e.engine: e.threshold for e in exact.engine_scores} == pytest.approx(
        {"embedding": 0.7, "lexical": 0.3}
    )
    # "battery powered drill driver" shares only "drill" with the query: lexical 0.5 passes its 0.3
    assert "lexical 0.50 >= threshold 0.30" in no_shared_term.reason
    assert not pillow.accepted and pillow.reason.startswith("relevance: embedding ")
    assert "lexical 0.00 < threshold 0.30" in pillow.reason
    # rewrites are decided by the weighted ensemble from the file
    embedding, lexical = (e.score for e in rewrite.engine_scores)
    assert rewrite.score == pytest.approx((3 * embedding + lexical) / 4, abs=1e-6)
    assert rewrite.reason.startswith("intent match: ensemble ")
    assert reply.judge_version.startswith("embedding:") and "|lexical:1|" in reply.judge_version
    assert reply.judge_version.endswith(POLICY.describe())


def test_concurrent_calls_are_scored_in_shared_batches(judge: Judge) -> None:
    batches_before = judge.metric("tailsynth_judge_batch_requests_count", engine="embedding")
    calls_before = judge.metric("tailsynth_judge_batch_requests_sum", engine="embedding")
    requests = [pairs((f"drill {i}", f"Cordless Drill model {i}", PRODUCT)) for i in range(16)]
    futures = [judge.stub.Judge.future(r, timeout=60) for r in requests]
    replies = [f.result() for f in futures]
    assert all(len(r.judgments) == 1 for r in replies)
    batches = judge.metric("tailsynth_judge_batch_requests_count", engine="embedding") - batches_before
    calls = judge.metric("tailsynth_judge_batch_requests_sum", engine="embedding") - calls_before
    assert calls == 16
    assert batches < 16, "16 concurrent calls were never batched together"
    assert not any(e.cached for r in replies for e in r.judgments[0].engine_scores)
    assert all(r.judgments[0].accepted for r in replies)


def test_a_repeated_call_is_answered_from_the_cache(judge: Judge) -> None:
    request = pairs(
        ("deck screws", "Screwvale #8 x 2 in. Exterior Deck Screws (1 lb.)", PRODUCT),
        ("deck screws", "exterior wood screws", REWRITE),
    )
    scored_before = judge.metric("tailsynth_judge_scored_pairs_total", engine="embedding")
    first = judge.stub.Judge(request, timeout=30)
    hits_before = judge.metric("tailsynth_judge_cache_lookups_total", engine="embedding", result="hit")
    second = judge.stub.Judge(request, timeout=30)
    assert not any(e.cached for j in first.judgments for e in j.engine_scores)
    # embedding scores come from the cache; lexical is cheaper to score than to look up
    assert [[(e.engine, e.cached) for e in j.engine_scores] for j in second.judgments] == [
        [("embedding", True), ("lexical", False)]
    ] * 2
    assert [j.score for j in second.judgments] == [j.score for j in first.judgments]
    assert [j.reason for j in second.judgments] == [j.reason for j in first.judgments]
    assert (
        judge.metric("tailsynth_judge_cache_lookups_total", engine="embedding", result="hit") - hits_before
        == 2
    )
    assert judge.metric("tailsynth_judge_scored_pairs_total", engine="embedding") - scored_before == 2


def test_bad_input_at_the_edge(judge: Judge) -> None:
    description = "Cordless drill with two batteries. " + "Keyless chuck, LED light, belt clip. " * 135
    assert len(description) > 5000
    (long,) = judge.stub.Judge(pairs(("cordless drill", description, PRODUCT)), timeout=30).judgments
    assert long.score > 0.5  # judged on its first 2,000 characters, not refused
    for request, message in [
        (pairs(("cordless drill", "", PRODUCT)), "empty text"),
        (pairs(("cordless drill", "x" * 20_001, PRODUCT)), "too long"),
    ]:
        with pytest.raises(grpc.RpcError) as error:
            judge.stub.Judge(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in error.value.details()
    raw = judge.channel.unary_unary("/synth.v1.Judge/Judge", request_serializer=lambda b: b)
    encoded = pairs(("drill", "Drill XXXX", PRODUCT)).SerializeToString().replace(b"XXXX", b"\xc3\x28")
    with pytest.raises(grpc.RpcError) as error:
        raw(encoded, timeout=10)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in error.value.details()
    # and the server is still fine
    assert judge.stub.Judge(pairs(("drill", "Drill", PRODUCT)), timeout=10).judgments[0].accepted
