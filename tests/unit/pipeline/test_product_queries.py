"""Product-side query generation's wiring: which generated queries the round trip keeps and why, what is
synthesized and stored, and the source pair. Fake clients stand in for the services (wiring only)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.gen.synth.v1 import common_pb2
from services.pipeline.config import PipelineSettings
from services.pipeline.domain import Hit, Judgment, PairKind, Product, RewriteCandidate, Rewritten
from services.pipeline.ids import pair_id
from services.pipeline.models import DroppedCandidate, EngineFailure, SynthesisResult
from services.pipeline.product_models import ProductItem
from services.pipeline.product_queries import ProductQueries
from services.pipeline.synthesize import SynthesisPipeline

SOURCE = Hit("P-1", "Holdline 8 in. T-Bar Pull, Stainless Steel", "Holdline 8 in. T-Bar Pull", 0.9)
OTHER = Hit("P-2", "Brassline Cup Pull, Brass", "Brassline Cup Pull", 0.5)
WRITTEN = {
    "product_keywords_v1": Rewritten(
        [RewriteCandidate("stainless t bar pull", "llm:hf"), RewriteCandidate("kitchen handle", "llm:hf")],
        dropped=[
            DroppedCandidate(text="Holdline 8 in. T-Bar Pull, Stainless Steel", reason="copy_of_title"),
            DroppedCandidate(text="", reason="empty"),
        ],
    ),
    "product_need_v1": Rewritten(
        [RewriteCandidate("Stainless T Bar Pull", "llm:hf"), RewriteCandidate("fix a wobbly door", "llm:hf")]
    ),
    "product_attributes_v1": Rewritten([RewriteCandidate("8 in steel pull", "llm:hf")]),
}


class FakeRewriter:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int, int | None]] = []
        self.written = dict(WRITTEN)

    async def write_queries(
        self, product: Product, prompt: str, n: int, seed: int | None = None
    ) -> Rewritten:
        self.asked.append((product.id, prompt, n, seed))
        return self.written[prompt]

    async def rewrite(self, query: str, n: int, feedback: list[str] | None = None) -> Rewritten:
        return Rewritten([])

    async def describe(self) -> common_pb2.ServiceInfo:
        return common_pb2.ServiceInfo(service="rewriter", engine="fake", version="1")


class FakeRetriever:
    """The source product first for queries with 'pull' in them; another product otherwise."""

    async def search(self, texts: list[str], top_k: int) -> list[list[Hit]]:
        return [[OTHER, SOURCE] if "pull" in t.lower() else [OTHER] for t in texts]

    async def describe(self) -> common_pb2.ServiceInfo:
        return common_pb2.ServiceInfo(service="retriever", engine="fake", version="1")


class FakeJudge:
    """Round trip: accepts queries about handles. Synthesis: rejects every pair."""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    async def judge_pairs(self, pairs: Sequence[tuple[str, str]], kind: PairKind) -> list[Judgment]:
        assert kind is PairKind.QUERY_PRODUCT
        self.pairs += pairs
        return [
            Judgment(0.8, "exact", True, "ok 0.80", {"embedding": 0.8})
            if "handle" in q
            else Judgment(0.2, "irrelevant", False, "low 0.20", {"embedding": 0.2})
            for q, _ in pairs
        ]

    async def judge(self, query: str, texts: list[str], kind: PairKind) -> list[Judgment]:
        return [
            Judgment(0.3, "irrelevant", False, "synthesis: 0.30 < 0.70", {"embedding": 0.3}) for _ in texts
        ]

    async def describe(self) -> common_pb2.ServiceInfo:
        return common_pb2.ServiceInfo(service="judge", engine="fake", version="1")


@pytest.fixture
async def products() -> ProductQueries:
    pipeline = SynthesisPipeline(
        PipelineSettings()
    )  # its channels bind to the running loop: an async fixture
    pipeline.rewriter, pipeline.retriever, pipeline.judge = FakeRewriter(), FakeRetriever(), FakeJudge()  # type: ignore[assignment]
    return ProductQueries(pipeline)


def item(**fields: object) -> ProductItem:
    return ProductItem.model_validate(
        {"product_id": "P-1", "title": "Holdline 8 in. T-Bar Pull, Stainless Steel", **fields}
    )


async def test_the_round_trip_keeps_by_rank_or_judge_and_drops_the_rest_with_reasons(
    products: ProductQueries,
) -> None:
    stored: list[SynthesisResult] = []

    async def store(result: SynthesisResult) -> tuple[int, int, int]:
        stored.append(result)
        return (result.accepted_count, 0, 0)

    result = await products.run(item(styles=["keywords", "need", "misspelled"], num_queries=2, seed=5), store)
    by_text = {(c.style, c.text): c for c in result.candidates}
    assert by_text["keywords", "stainless t bar pull"].reason == "kept_by_retrieval"
    assert by_text["keywords", "stainless t bar pull"].rank == 2
    assert by_text["keywords", "kitchen handle"].reason == "kept_by_judge"
    assert by_text["keywords", "kitchen handle"].rank is None
    assert by_text["keywords", "kitchen handle"].score == 0.8
    assert by_text["keywords", "Holdline 8 in. T-Bar Pull, Stainless Steel"].reason == "copy_of_title"
    assert by_text["keywords", ""].reason == "empty"
    assert by_text["need", "Stainless T Bar Pull"].reason == "duplicate"  # the keywords query, in capitals
    assert by_text["need", "fix a wobbly door"].reason == "round_trip_failed"
    assert "the judge rejects it: low 0.20" in by_text["need", "fix a wobbly door"].detail
    misspelled = [c for c in result.candidates if c.style == "misspelled"]
    assert len(misspelled) == 2 and all(c.source == "typos:keywords" for c in misspelled)
    assert {c.text for c in misspelled}.isdisjoint({"stainless t bar pull", "kitchen handle"})
    # garbage never reached the retriever or the judge
    assert all(
        q not in ("", "Holdline 8 in. T-Bar Pull, Stainless Steel") for q, _ in products.pipeline.judge.pairs
    )  # type: ignore[attr-defined]

    kept = [c for c in result.candidates if c.kept]
    assert result.kept == len(kept) == len(result.syntheses) == len(stored)
    assert result.generated == len(result.candidates)
    assert sum(result.dropped.values()) == result.generated - result.kept
    assert result.dropped["copy_of_title"] == 1 and result.dropped["empty"] == 1
    assert {(c.style, c.origin) for c in kept} == {(s.style, s.origin) for s in result.syntheses}
    assert all(s.origin == f"product:P-1:{s.style}" for s in result.syntheses)
    # Each synthesis is stored under its origin, its source pair accepted although its judges rejected it.
    for synthesis in stored:
        assert synthesis.origin.startswith("product:P-1:")
        source = next(p for p in synthesis.pairs if p.product_id == "P-1")
        assert source.accepted and source.reason.startswith("round trip of a ")
        assert source.pair_id == pair_id(synthesis.query, "P-1")
        assert [p.product_id for p in synthesis.pairs if p.accepted] == ["P-1"]
        assert synthesis.accepted_count == 1
    handle = next(s for s in stored if s.query == "kitchen handle")
    added = next(p for p in handle.pairs if p.product_id == "P-1")
    assert added.retrieved_by == [] and added.score == 0.8  # not retrieved: the round trip's judgment
    by_rank = next(s for s in stored if s.query == "stainless t bar pull")
    reason = next(p.reason for p in by_rank.pairs if p.product_id == "P-1")
    assert "source product at rank 2 of 20" in reason and "synthesis judges: synthesis: 0.30" in reason
    assert all(s.source_pair_id in s.pair_ids and s.new == 1 for s in result.syntheses)


async def test_misspellings_alone_are_made_from_keywords_queries_that_are_not_kept_themselves(
    products: ProductQueries,
) -> None:
    result = await products.run(item(styles=["misspelled"], num_queries=2))
    assert {c.style for c in result.candidates} == {"misspelled"}
    assert len(result.candidates) == 2
    asked = products.pipeline.rewriter.asked  # type: ignore[attr-defined]
    assert [prompt for _, prompt, _, _ in asked] == ["product_keywords_v1"]


async def test_the_llm_is_asked_once_per_style_with_the_style_prompt_and_the_seed(
    products: ProductQueries,
) -> None:
    await products.run(item(styles=["attributes", "keywords"], num_queries=3, seed=9))
    asked = products.pipeline.rewriter.asked  # type: ignore[attr-defined]
    assert sorted(asked) == [("P-1", "product_attributes_v1", 3, 9), ("P-1", "product_keywords_v1", 3, 9)]


async def test_a_product_whose_queries_are_all_dropped_synthesizes_nothing(products: ProductQueries) -> None:
    stored: list[SynthesisResult] = []

    async def store(result: SynthesisResult) -> tuple[int, int, int]:
        stored.append(result)
        return (0, 0, 0)

    products.pipeline.rewriter.written["product_need_v1"] = Rewritten(  # type: ignore[attr-defined]
        [RewriteCandidate("fix a wobbly door", "llm:hf"), RewriteCandidate("shiny things", "llm:hf")],
        dropped=[DroppedCandidate(text="x" * 200, reason="too_long")],
    )
    result = await products.run(item(styles=["need"]), store)
    assert result.kept == 0 and result.syntheses == [] and stored == []
    assert result.dropped == {"round_trip_failed": 2, "too_long": 1}


async def test_a_style_whose_engine_failed_is_reported(products: ProductQueries) -> None:
    products.pipeline.rewriter.written["product_need_v1"] = Rewritten(  # type: ignore[attr-defined]
        [], failures=[EngineFailure(engine="hf", error="timeout: no answer within 59.8s")]
    )
    result = await products.run(item(styles=["keywords", "need"]))
    assert [(f.style, f.engine, f.error) for f in result.failures] == [
        ("need", "hf", "timeout: no answer within 59.8s")
    ]
    assert {c.style for c in result.candidates} == {"keywords"}
