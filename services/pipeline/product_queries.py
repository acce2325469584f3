"""Queries generated from products (InPars / Promptagator / GPL): product -> shopper queries -> round trip
-> the normal synthesis of each kept query, its source pair accepted.

For one product, the rewriter writes queries in each style with that style's product prompt (a
misspelling is made from each keywords query with a keyboard typo, or asked of the LLM, per
PipelineSettings.product_prompts). The rewriter already drops empty, over-long and non-text output and
copies of the title; queries repeated across styles are dropped here. Every other query takes the round
trip: it is searched (top_k) and judged against the product as a query-product pair; it is kept when the
product is in its top k (kept_by_retrieval, its rank recorded) or else when the judge accepts the pair
(kept_by_judge); otherwise it is dropped (round_trip_failed). Each kept query is then synthesized by
SynthesisPipeline.run() like a logged one, under origin product:<id>:<style>, and its (query, source
product) pair is made an accepted pair of that result, so it goes to the store with the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.core.text import normalize_query
from services.pipeline import typos
from services.pipeline.config import TYPOS
from services.pipeline.domain import Judgment, PairKind, Product
from services.pipeline.ids import pair_id
from services.pipeline.models import Pair, SynthesisResult
from services.pipeline.product_models import (
    KEPT_REASONS,
    STYLES,
    GeneratedQuery,
    ProductItem,
    ProductResult,
    ProductSynthesis,
    StyleFailure,
)
from services.pipeline.synthesize import SynthesisPipeline, SynthesisRequest

# What storing one synthesis reports: (new, duplicates, spooled).
Store = Callable[[SynthesisResult], Awaitable[tuple[int, int, int]]]
BASE_OF_TYPOS = "keywords"


def origin_of(product_id: str, style: str) -> str:
    return f"product:{product_id}:{style}"


def reason_code(reason: str) -> str:
    """The rewriter's drop reason without its engine: 'duplicate (llm:hf)' -> 'duplicate'."""
    return reason.split(" ", 1)[0] or "dropped"


@dataclass
class _Query:
    style: str
    text: str
    source: str
    reason: str = ""  # '' while it is still in the running
    detail: str = ""
    rank: int | None = None
    judgment: Judgment | None = None

    def shown(self, product_id: str) -> GeneratedQuery:
        j = self.judgment
        return GeneratedQuery(
            style=self.style,
            text=self.text,
            source=self.source,
            kept=self.reason in KEPT_REASONS,
            reason=self.reason,
            detail=self.detail,
            rank=self.rank,
            score=round(j.score, 4) if j else None,
            judges=j.engine_scores if j else {},
            origin=origin_of(product_id, self.style),
        )


@dataclass
class _Clock:
    timings_ms: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings_ms[stage] = round((now - since) * 1000, 1)
        return now


def product_of(item: ProductItem) -> Product:
    return Product(item.product_id, item.title, item.brand, item.category, item.description)


class ProductQueries:
    def __init__(self, pipeline: SynthesisPipeline) -> None:
        self.pipeline = pipeline
        self.styles = pipeline.settings.styles
        self.concurrency = pipeline.settings.product_concurrency

    async def run(self, item: ProductItem, store: Store | None = None) -> ProductResult:
        """Generate, filter and synthesize; each synthesis is stored (store()) as soon as it is done."""
        product = product_of(item)
        clock = _Clock()
        version = await self.pipeline.version()
        failures: list[StyleFailure] = []
        queries = await self.generate(product, item, failures)
        lap = clock.lap("generate", clock.started)
        await self.round_trip(product, queries, item.top_k)
        lap = clock.lap("round_trip", lap)
        kept = [q for q in queries if q.reason in KEPT_REASONS]
        slots = asyncio.Semaphore(self.concurrency)

        async def synthesize(query: _Query) -> ProductSynthesis:
            async with slots:
                return await self.synthesize(product, query, item, store)

        syntheses = list(await asyncio.gather(*(synthesize(q) for q in kept)))
        clock.lap("synthesize", lap)
        clock.lap("total", clock.started)
        dropped = Counter(q.reason for q in queries if q.reason not in KEPT_REASONS)
        return ProductResult(
            product_id=product.id,
            title=product.title,
            candidates=[q.shown(product.id) for q in queries],
            failures=failures,
            syntheses=syntheses,
            generated=len(queries),
            kept=len(kept),
            dropped=dict(sorted(dropped.items())),
            accepted_count=sum(s.accepted_count for s in syntheses),
            timings_ms=clock.timings_ms,
            pipeline_version=version,
        )

    async def generate(
        self, product: Product, item: ProductItem, failures: list[StyleFailure] | None = None
    ) -> list[_Query]:
        """Every query the styles asked for give, the rewriter's dropped ones with their reasons; a query
        that another style already wrote is dropped as a duplicate."""
        wanted: list[str] = [s for s in STYLES if s in item.styles]
        derive = "misspelled" in wanted and self.styles["misspelled"] == TYPOS
        asked: list[str] = [s for s in wanted if not (s == "misspelled" and derive)]
        if derive and BASE_OF_TYPOS not in asked:
            asked.append(BASE_OF_TYPOS)  # the typos are made from keywords queries, not kept themselves
        answers = await asyncio.gather(
            *(
                self.pipeline.rewriter.write_queries(product, self.styles[s], item.num_queries, item.seed)
                for s in asked
            )
        )
        queries: list[_Query] = []
        for style, answer in zip(asked, answers, strict=True):
            if failures is not None:
                failures += [
                    StyleFailure(style=style, engine=f.engine, error=f.error) for f in answer.failures
                ]
            written = [_Query(style, c.text, c.source) for c in answer.candidates]
            if style in wanted:
                queries += written
                queries += [
                    _Query(style, d.text, "", reason_code(d.reason), d.reason) for d in answer.dropped
                ]
            if derive and style == BASE_OF_TYPOS:
                queries += [self._misspelled(q) for q in written]
        seen: dict[str, str] = {normalize_query(product.title): "the title"}
        for query in queries:
            if query.reason:
                continue
            key = normalize_query(query.text)
            if key in seen:
                query.reason = "copy_of_title" if seen[key] == "the title" else "duplicate"
                query.detail = f"same as {seen[key]}"
            else:
                seen[key] = f"a {query.style} query"
        return queries

    @staticmethod
    def _misspelled(query: _Query) -> _Query:
        text = typos.misspell(query.text)
        if text is None:
            return _Query("misspelled", query.text, "typos:keywords", "no_typo", "no word of 4+ letters")
        return _Query("misspelled", text, "typos:keywords")

    async def round_trip(self, product: Product, queries: list[_Query], top_k: int) -> None:
        """Decide every query still in the running: kept by retrieval or the judge, or round_trip_failed."""
        running = [q for q in queries if not q.reason]
        if not running:
            return
        texts = [q.text for q in running]
        hits, judgments = await asyncio.gather(
            self.pipeline.retriever.search(texts, top_k),
            self.pipeline.judge.judge_pairs([(t, product.text) for t in texts], PairKind.QUERY_PRODUCT),
        )
        for query, found, judgment in zip(running, hits, judgments, strict=True):
            ids = [hit.product_id for hit in found]
            query.judgment = judgment
            if product.id in ids:
                query.rank = ids.index(product.id) + 1
                query.reason = "kept_by_retrieval"
                query.detail = f"source product at rank {query.rank} of {top_k}"
            elif judgment.accepted:
                query.reason = "kept_by_judge"
                query.detail = (
                    f"source product not in the top {top_k}; the judge accepts it: {judgment.reason}"
                )
            else:
                query.reason = "round_trip_failed"
                query.detail = (
                    f"source product not in the top {top_k}, the judge rejects it: {judgment.reason}"
                )

    async def synthesize(
        self, product: Product, query: _Query, item: ProductItem, store: Store | None
    ) -> ProductSynthesis:
        origin = origin_of(product.id, query.style)
        request = SynthesisRequest(query.text, item.num_rewrites, item.top_k, origin)
        result = with_source_pair(await self.pipeline.run(request), product, query)
        # Shielded: a caller that goes away must not leave a synthesis half stored.
        new, duplicates, spooled = await asyncio.shield(store(result)) if store else (0, 0, 0)
        accepted = [p.pair_id for p in result.pairs if p.accepted]
        return ProductSynthesis(
            query=result.query,
            style=query.style,
            origin=origin,
            accepted_count=result.accepted_count,
            pair_ids=accepted,
            source_pair_id=pair_id(result.query, product.id),
            new=new,
            duplicates=duplicates,
            spooled=spooled,
        )


def with_source_pair(result: SynthesisResult, product: Product, query: _Query) -> SynthesisResult:
    """The result with (query, source product) as an accepted pair, its reason naming the round trip:
    the product the query was written for is its positive, whatever the synthesis's judges decided."""
    note = f"round trip of a {query.style} query written for this product: {query.detail}"
    pairs = list(result.pairs)
    index = next((i for i, p in enumerate(pairs) if p.product_id == product.id), None)
    if index is not None:
        pair = pairs[index]
        pairs[index] = pair.model_copy(
            update={"accepted": True, "reason": f"{note}; synthesis judges: {pair.reason}"}
        )
    else:  # not retrieved by the query or its rewrites: judged in the round trip only
        judgment = query.judgment
        pairs.append(
            Pair(
                pair_id=pair_id(result.query, product.id),
                product_id=product.id,
                title=product.title,
                score=round(judgment.score, 4) if judgment else 0.0,
                label=judgment.label if judgment else "irrelevant",
                accepted=True,
                reason=note,
                judges=judgment.engine_scores if judgment else {},
                retrieved_by=[],
                found_by_query=False,
                retrieval_score=0.0,
            )
        )
        pairs.sort(key=lambda p: p.score, reverse=True)
    return result.model_copy(update={"pairs": pairs, "accepted_count": sum(1 for p in pairs if p.accepted)})
