"""The llm judge on SmolLM2-135M with the hf backend: real label log-probabilities, no generated text."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from services.core.errors import ConfigError
from services.core.health import wait_serving
from services.core.llm.labels import label_token_ids
from services.core.redis_server import free_port
from services.gen.synth.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.engines.llm import LLMJudge
from tests.integration.judge_llm_pairs import PRODUCT_PAIRS, REWRITE_PAIRS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judge(rewriter_model_dir: Path) -> Iterator[LLMJudge]:
    engine = LLMJudge(JudgeSettings(engines="llm", llm_model_dir=rewriter_model_dir, llm_batch_size=16))
    engine.load()

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the llm judge must read label log-probabilities, not generate text")

    engine.runtime.model.generate = no_generation
    yield engine
    engine.close()


def _separates(judge: LLMJudge, triples: list[tuple[str, str, str]], kind: PairKind) -> tuple[float, int]:
    good = judge.score([(q, a, kind) for q, a, _ in triples])
    bad = judge.score([(q, b, kind) for q, _, b in triples])
    assert all(0.0 <= s <= 1.0 for s in good + bad)
    return float(np.mean(good) - np.mean(bad)), sum(g > b for g, b in zip(good, bad, strict=True))


def test_relevant_products_score_above_irrelevant_ones(judge: LLMJudge) -> None:
    gap, wins = _separates(judge, PRODUCT_PAIRS, PairKind.QUERY_PRODUCT)
    assert gap > 0.0 and wins >= 6, (gap, wins)


def test_rewrites_that_keep_the_intent_score_above_unrelated_ones(judge: LLMJudge) -> None:
    gap, wins = _separates(judge, REWRITE_PAIRS, PairKind.QUERY_REWRITE)
    assert gap > 0.0 and wins >= 6, (gap, wins)


def test_one_padded_batch_scores_like_each_prompt_alone(judge: LLMJudge) -> None:
    pairs = [(q, a, PairKind.QUERY_PRODUCT) for q, a, _ in PRODUCT_PAIRS]
    pairs += [(q, b, PairKind.QUERY_REWRITE) for q, _, b in REWRITE_PAIRS]
    batched = judge.distributions(pairs)
    alone = [judge.distributions([pair])[0] for pair in pairs[::3]]
    for together, by_itself in zip(batched[::3], alone, strict=True):
        np.testing.assert_allclose(together, by_itself, atol=1e-4)
    assert [len(d) for d in batched] == [3] * len(PRODUCT_PAIRS) + [2] * len(REWRITE_PAIRS)
    assert all(abs(d.sum() - 1) < 1e-9 for d in batched)


def test_labels_are_checked_against_the_real_tokenizer(judge: LLMJudge) -> None:
    tokenizer = judge.runtime.tokenizer
    assert len(set(label_token_ids(tokenizer, [" no", " partly", " yes"], "probe"))) == 3
    with pytest.raises(ConfigError, match="' 1' is 2 tokens"):
        label_token_ids(tokenizer, [" 1", " 2", " 3", " 4"], "probe")
    assert judge.version.startswith("llm:hf:smollm2-135m-instruct")


@pytest.fixture(scope="module")
def server(rewriter_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    """The judge service as its own process with only the llm engine (hf backend)."""
    port = free_port()
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(tmp_path_factory.mktemp("judge-state")),
        "TAILSYNTH_JUDGE_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_JUDGE_ENGINES": "llm",
        "TAILSYNTH_JUDGE_LLM_MODEL_DIR": str(rewriter_model_dir),
        "TAILSYNTH_JUDGE_HEALTH_INTERVAL_S": "300",
    }
    log = tmp_path_factory.mktemp("judge-log") / "judge.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.judge"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def alive() -> None:
        assert process.poll() is None, log.read_text(errors="replace")[-4000:]

    try:
        wait_serving(f"127.0.0.1:{port}", 240, check=alive, what="judge")
        yield channel
    finally:
        channel.close()
        process.terminate()
        process.wait(30)


def test_the_judge_service_serves_the_llm_engine_for_both_kinds(server: grpc.Channel) -> None:
    stub = judge_pb2_grpc.JudgeStub(server)
    info = stub.Describe(common_pb2.DescribeRequest(), timeout=10)
    assert info.engine == "llm" and info.details["engine.llm"] == "query_product,query_rewrite"
    product, rewrite = judge_pb2.PAIR_KIND_QUERY_PRODUCT, judge_pb2.PAIR_KIND_QUERY_REWRITE
    items = [(q, a, product) for q, a, _ in PRODUCT_PAIRS] + [(q, b, product) for q, _, b in PRODUCT_PAIRS]
    items += [(q, a, rewrite) for q, a, _ in REWRITE_PAIRS] + [(q, b, rewrite) for q, _, b in REWRITE_PAIRS]
    request = judge_pb2.JudgeRequest(
        pairs=[judge_pb2.JudgePair(query=q, text=t, kind=k) for q, t, k in items]
    )
    reply = stub.Judge(request, timeout=300)
    assert "llm:hf:smollm2-135m-instruct" in reply.judge_version and "product_v1@" in reply.judge_version
    scores = []
    for judgment in reply.judgments:
        (engine_score,) = judgment.engine_scores
        assert engine_score.engine == "llm" and 0.0 <= engine_score.score <= 1.0
        scores.append(engine_score.score)
    n, m = len(PRODUCT_PAIRS), len(REWRITE_PAIRS)
    assert np.mean(scores[:n]) > np.mean(scores[n : 2 * n])
    assert np.mean(scores[2 * n : 2 * n + m]) > np.mean(scores[2 * n + m :])
