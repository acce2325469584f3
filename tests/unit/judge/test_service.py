"""The judge service in process over real gRPC: engine/kind routing, batching, the cache, bad input.

The engines are the real lexical judge and a product-only judge defined here to observe the wiring
(which pairs reach which engine, in how many calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from services.core.errors import ConfigError
from services.core.grpc_server import SERVER_OPTIONS, ErrorInterceptor
from services.core.redis_server import EmbeddedRedis, free_port
from services.gen.synth.v1 import judge_pb2, judge_pb2_grpc
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, JudgeEngine, Pair, PairKind, create_engines
from services.judge.engines.lexical import LexicalJudge
from services.judge.servicer import JUDGED_TEXT_CHARS, JudgeService

PRODUCT, REWRITE = judge_pb2.PAIR_KIND_QUERY_PRODUCT, judge_pb2.PAIR_KIND_QUERY_REWRITE


class ProductOnlyJudge(JudgeEngine):
    """Scores 0.9 when the text names a drill, else 0.2; records every call it gets."""

    name = "product_only"
    kinds = frozenset({PairKind.QUERY_PRODUCT})

    def __init__(self, settings: JudgeSettings) -> None:
        super().__init__(settings)
        self.calls: list[list[Pair]] = []
        self.score_of: Callable[[str], float] = lambda text: 0.9 if "drill" in text.lower() else 0.2

    def load(self) -> None:
        pass

    @property
    def version(self) -> str:
        return "product_only:1"

    def score(self, pairs: list[Pair]) -> list[float]:
        self.calls.append(list(pairs))
        return [self.score_of(text) for _, text, _ in pairs]


@asynccontextmanager
async def serving(**settings: Any) -> AsyncIterator[tuple[judge_pb2_grpc.JudgeStub, ProductOnlyJudge, Any]]:
    config = JudgeSettings(**{"product_thresholds": "product_only=0.5,lexical=0.5", **settings})
    product_only = ProductOnlyJudge(config)
    service = JudgeService(config, engines=[product_only, LexicalJudge(config)])
    server = grpc.aio.server(interceptors=[ErrorInterceptor(service.name)], options=SERVER_OPTIONS)
    service.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await service.load()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield judge_pb2_grpc.JudgeStub(channel), product_only, channel
    finally:
        await channel.close()
        await server.stop(None)
        await service.close()


def request(*pairs: tuple[str, str, int]) -> judge_pb2.JudgeRequest:
    return judge_pb2.JudgeRequest(pairs=[judge_pb2.JudgePair(query=q, text=t, kind=k) for q, t, k in pairs])


async def test_each_pair_goes_to_the_engines_that_judge_its_kind() -> None:
    async with serving() as (stub, product_only, _):
        reply = await stub.Judge(
            request(
                ("cordless drill", "Voltra 20V Cordless Drill", PRODUCT),
                ("cordless drill", "Velvet Throw Pillow", PRODUCT),
                ("cordless drill", "battery drill", REWRITE),
            ),
            timeout=10,
        )
        drill, pillow, rewrite = reply.judgments
        assert [e.engine for e in drill.engine_scores] == ["lexical", "product_only"]
        assert [e.engine for e in rewrite.engine_scores] == ["lexical"]
        assert [kind for call in product_only.calls for *_, kind in call] == [PairKind.QUERY_PRODUCT] * 2
        assert drill.accepted and drill.score == pytest.approx((1.0 + 0.9) / 2)
        assert not pillow.accepted
        assert pillow.reason == (
            "relevance: lexical 0.00 < threshold 0.50; product_only 0.20 < threshold 0.50"
        )
        assert {e.engine: (e.passed, round(e.threshold, 2)) for e in pillow.engine_scores} == {
            "lexical": (False, 0.5),
            "product_only": (False, 0.5),
        }
        # the rewrite is judged by lexical alone, against the rewrite threshold (0.75): 1 of 2 terms
        assert not rewrite.accepted and rewrite.reason == "intent match: lexical 0.50 < threshold 0.75"
        assert reply.judge_version.startswith("product_only:1|lexical:1|query_product:all>=0.7")

        calls = len(product_only.calls)
        await stub.Judge(request(("drill", "a drill", REWRITE)), timeout=10)
        assert len(product_only.calls) == calls  # an engine that judges no kind present is skipped


async def test_ensemble_mode_over_the_wire() -> None:
    async with serving(policy="ensemble", weights="product_only=3") as (stub, _, _):
        reply = await stub.Judge(request(("cordless drill", "Velvet drill Pillow", PRODUCT)), timeout=10)
        (j,) = reply.judgments
        assert j.score == pytest.approx((0.5 + 3 * 0.9) / 4)
        assert j.accepted and j.label == judge_pb2.RELEVANCE_LABEL_EXACT
        assert j.reason.startswith("relevance: ensemble 0.80 >= threshold 0.70")


async def test_concurrent_calls_share_engine_batches_and_answer_like_lone_calls() -> None:
    async with serving(batch_max_pairs=512, batch_wait_ms=50) as (stub, product_only, _):
        requests = [
            request(("drill", f"Drill model {i}", PRODUCT), ("drill", "pillow", PRODUCT)) for i in range(8)
        ]
        lone = [await stub.Judge(r, timeout=10) for r in requests]
        before = len(product_only.calls)
        together = await asyncio.gather(*(stub.Judge(r, timeout=10) for r in requests))
        assert [[j.score for j in r.judgments] for r in together] == [
            [j.score for j in r.judgments] for r in lone
        ]
        batches = product_only.calls[before:]
        assert len(batches) < len(requests)
        # identical pairs of different calls are scored once per batch
        assert all(len(set(batch)) == len(batch) for batch in batches)
        assert sum(len(batch) for batch in batches) < 2 * len(requests)


async def test_a_second_call_is_served_from_the_cache_and_thresholds_reuse_it(
    redis_server: EmbeddedRedis,
) -> None:
    pairs = request(("cordless drill", "Voltra Cordless Drill", PRODUCT), ("drill", "Velvet Pillow", PRODUCT))
    async with serving(cache_url=redis_server.url) as (stub, product_only, _):
        first = await stub.Judge(pairs, timeout=10)
        assert not any(e.cached for j in first.judgments for e in j.engine_scores)
        calls = len(product_only.calls)
        second = await stub.Judge(pairs, timeout=10)
        # the lexical judge is cheap: scoring it again costs less than a Redis round trip
        assert [[(e.engine, e.cached) for e in j.engine_scores] for j in second.judgments] == [
            [("lexical", False), ("product_only", True)]
        ] * 2
        assert len(product_only.calls) == calls
        assert [j.score for j in second.judgments] == [j.score for j in first.judgments]
    # another policy (stricter thresholds) decides again from the cached engine scores
    async with serving(cache_url=redis_server.url, product_thresholds="product_only=0.95") as (
        stub,
        product_only,
        _,
    ):
        third = await stub.Judge(pairs, timeout=10)
        assert product_only.calls == []
        assert all(e.cached for j in third.judgments for e in j.engine_scores if e.engine == "product_only")
        assert first.judgments[0].accepted and not third.judgments[0].accepted
        assert "product_only 0.90 < threshold 0.95" in third.judgments[0].reason
        assert third.judge_version != first.judge_version


async def test_without_redis_the_judge_still_answers() -> None:
    async with serving(cache_url=f"redis://127.0.0.1:{free_port()}/0", cache_timeout_s=0.2) as (
        stub,
        calls,
        _,
    ):
        for _ in range(2):
            reply = await stub.Judge(request(("drill", "cordless drill", PRODUCT)), timeout=10)
            assert reply.judgments[0].accepted
            assert not any(e.cached for e in reply.judgments[0].engine_scores)
        assert len(calls.calls) == 2


async def test_bad_input_is_invalid_argument_with_a_message() -> None:
    async with serving(max_pairs=3) as (stub, _, channel):
        cases = [
            (request(("drill", "", PRODUCT)), "pairs[0] has an empty text"),
            (
                request(("drill", "ok", PRODUCT), ("drill", " \t\u200b ", PRODUCT)),
                "pairs[1] has an empty text",
            ),
            (request(("", "Drill", PRODUCT)), "empty query"),
            (request(("drill", "Drill", 0)), "kind must be"),
            (request(("drill", "x" * 20_001, PRODUCT)), "too long"),
            (request(*[("drill", "Drill", PRODUCT)] * 4), "the limit is 3"),
            (judge_pb2.JudgeRequest(), "pairs is empty"),
        ]
        for bad, message in cases:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Judge(bad, timeout=10)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, message
            assert message in (error.value.details() or "")

        raw = channel.unary_unary("/synth.v1.Judge/Judge", request_serializer=lambda b: b)
        encoded = request(("drill", "XXXX", PRODUCT)).SerializeToString()
        for broken, message in [
            (encoded.replace(b"XXXX", b"\xff\xfeab"), "valid UTF-8"),
            (encoded[:-3], "decode"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await raw(broken, timeout=10)
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert message in (error.value.details() or "")


async def test_a_long_description_is_judged_on_its_first_part() -> None:
    async with serving() as (stub, product_only, _):
        description = "Cordless drill. " + "Lorem ipsum dolor sit amet. " * 180  # ~5,000 characters
        assert len(description) > 5000
        reply = await stub.Judge(request(("drill", description, PRODUCT)), timeout=10)
        assert reply.judgments[0].accepted
        assert len(product_only.calls[-1][0][1]) == JUDGED_TEXT_CHARS


async def test_an_engine_score_outside_0_1_fails_the_call_instead_of_being_used() -> None:
    async with serving() as (stub, product_only, _):
        product_only.score_of = lambda text: float("nan")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Judge(request(("drill", "Drill", PRODUCT)), timeout=10)
        assert error.value.code() == grpc.StatusCode.INTERNAL


def test_configuration_errors_name_the_problem() -> None:
    settings = JudgeSettings()
    with pytest.raises(ConfigError, match="judges query_rewrite pairs"):
        JudgeService(settings, engines=[ProductOnlyJudge(settings)])
    with pytest.raises(ConfigError, match="cross_encoder"):
        JudgeService(JudgeSettings(product_thresholds="cross_encoder=0.5"), engines=[LexicalJudge(settings)])
    with pytest.raises(ConfigError, match="unknown judge engine 'bert'"):
        create_engines(JudgeSettings(engines="embedding,bert"))
    with pytest.raises(ValueError, match="distinct"):
        JudgeSettings(engines="lexical,lexical")
    assert [type(e) for e in create_engines(JudgeSettings(engines="lexical"))] == [LexicalJudge]
    assert {"embedding", "lexical"} <= set(ENGINES.names())


def test_a_cheap_engine_is_neither_batched_nor_cached(redis_server: EmbeddedRedis) -> None:
    settings = JudgeSettings(cache_url=redis_server.url)
    service = JudgeService(settings, engines=[ProductOnlyJudge(settings), LexicalJudge(settings)])
    product_only, lexical = service.scorers
    assert product_only.batcher.enabled and product_only.cache is service.cache is not None
    assert not lexical.batcher.enabled and lexical.cache is None
