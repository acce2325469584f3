"""THE synthesis pipeline: query -> rewrites -> retrieval -> judgments -> scored pairs.

SynthesisPipeline.stages() runs one synthesis and yields each stage as it completes; run() is the same
to its last stage, the result. The gateway serves every synthesis endpoint from stages() (the stream
shows each stage, the plain and batch endpoints only the result), the queue worker calls run(), and the
CLI's `synth query` and `synth synthesize` go through the gateway over HTTP. Nothing else orchestrates
the services.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from services import __version__
from services.core.text import clean
from services.pipeline import typos
from services.pipeline.clients import BackendError, JudgeClient, RewriterClient, retriever_client
from services.pipeline.config import PipelineSettings
from services.pipeline.domain import Hit, Judgment, PairKind, Rewritten
from services.pipeline.ids import pair_id
from services.pipeline.models import (
    DEFAULT_NUM_REWRITES,
    DEFAULT_TOP_K,
    Candidate,
    Diagnostics,
    JudgmentsStage,
    Pair,
    RetrievalStage,
    RewritesStage,
    Search,
    SearchHit,
    SynthesisResult,
)
from services.pipeline.rewards import rank_rewrites

# Bump when the pipeline's own logic changes what it returns for the same services.
ALGORITHM_VERSION = "2"
# Bump when product-side query generation (product_queries.py) changes what it keeps for the same services.
PRODUCT_ALGORITHM = "product-queries-v1"
T = TypeVar("T")
# What stages() yields, in this order; the result carries everything the earlier ones did, plus rewards.
Stage = RewritesStage | RetrievalStage | JudgmentsStage | SynthesisResult


@dataclass(frozen=True)
class SynthesisRequest:
    query: str
    num_rewrites: int = DEFAULT_NUM_REWRITES
    top_k: int = DEFAULT_TOP_K
    origin: str = ""  # '' or "query": logged; "product:<id>:<style>": generated (models.ORIGIN_DESCRIPTION)


@dataclass
class _Stopwatch:
    timings_ms: dict[str, float] = field(default_factory=dict)

    async def time(self, stage: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await work
        finally:
            self.timings_ms[stage] = round((time.perf_counter() - started) * 1000, 1)


@dataclass
class _Found:
    hit: Hit
    retrieved_by: list[str]
    found_by_query: bool


def _merge_hits(searches: list[tuple[str, list[Hit]]]) -> dict[str, _Found]:
    """One entry per product over all searches (the query's first), remembering every text that found it."""
    found: dict[str, _Found] = {}
    for index, (text, hits) in enumerate(searches):
        for hit in hits:
            entry = found.setdefault(hit.product_id, _Found(hit, [], False))
            entry.retrieved_by.append(text)
            entry.found_by_query |= index == 0
            if hit.score > entry.hit.score:
                entry.hit = hit
    return found


def _pair(query: str, found: _Found, judgment: Judgment) -> Pair:
    return Pair(
        pair_id=pair_id(query, found.hit.product_id),
        product_id=found.hit.product_id,
        title=found.hit.title,
        score=round(judgment.score, 4),
        label=judgment.label,
        accepted=judgment.accepted,
        reason=judgment.reason,
        judges=judgment.engine_scores,
        retrieved_by=found.retrieved_by,
        found_by_query=found.found_by_query,
        retrieval_score=round(found.hit.score, 4),
    )


class SynthesisPipeline:
    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.rewriter = RewriterClient(settings.rewriter_target, settings.rewrite_timeout_s)
        self.retriever = retriever_client(settings.retriever_targets, settings.search_timeout_s)
        self.judge = JudgeClient(settings.judge_target, settings.judge_timeout_s)
        self._version: tuple[float, str] | None = None
        self.judge_version = ""  # what the judge served when the version was last read (engines, policy)

    async def close(self) -> None:
        await asyncio.gather(self.rewriter.close(), self.retriever.close(), self.judge.close())

    async def healthy(self) -> dict[str, bool]:
        names = ("rewriter", "retriever", "judge")
        checks = await asyncio.gather(self.rewriter.healthy(), self.retriever.healthy(), self.judge.healthy())
        return dict(zip(names, checks, strict=True))

    async def version(self, allow_stale: bool = False) -> str:
        """tailsynth version + hash of what every service serves (models, index, prompt, policy).

        With allow_stale, a service that cannot answer Describe leaves the last known version in use
        (so cached results keep being served while it is down).
        """
        now = time.monotonic()
        if self._version and now - self._version[0] < self.settings.version_ttl_s:
            return self._version[1]
        try:
            infos = await asyncio.gather(
                self.rewriter.describe(), self.retriever.describe(), self.judge.describe()
            )
        except BackendError:
            if allow_stale and self._version:
                return self._version[1]
            raise
        scoring = f"rewards={self.settings.reward_weights};floor={self.settings.relevance_floor}"
        products = f"products={self.settings.product_prompts};{PRODUCT_ALGORITHM};{typos.ALGORITHM}"
        parts = [ALGORITHM_VERSION, scoring, products] + [
            f"{i.service}={i.engine}:{i.version}" for i in infos
        ]
        version = f"{__version__}+{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"
        self._version = (now, version)
        self.judge_version = infos[2].version
        return version

    async def run(self, request: SynthesisRequest) -> SynthesisResult:
        async for stage in self.stages(request):
            if isinstance(stage, SynthesisResult):
                return stage
        raise AssertionError("stages() ends with the result")

    async def stages(
        self, request: SynthesisRequest, rewritten: Rewritten | None = None
    ) -> AsyncIterator[Stage]:
        """Run the synthesis, yielding each stage's output as it completes; the last one is the result.

        With `rewritten`, those candidates stand in for the rewriter's answer (a policy's samples being
        scored in training): every later stage and the rewards are the same code as for served rewrites.
        """
        clock = _Stopwatch()
        started = time.perf_counter()
        query = clean(request.query)
        version = await self.version()

        # The query's own top products ground the catalog engine's pseudo-relevance feedback.
        query_hits = await clock.time("search_query", self.retriever.search([query], request.top_k))
        feedback = [hit.title for hit in query_hits[0][: self.settings.feedback_titles]]
        if rewritten is None:
            rewritten = await clock.time(
                "rewrite", self.rewriter.rewrite(query, request.num_rewrites, feedback)
            )
        candidates = rewritten.candidates
        intent = await clock.time(
            "judge_rewrites", self.judge.judge(query, [c.text for c in candidates], PairKind.QUERY_REWRITE)
        )
        dropped = rewritten.dropped
        diagnostics = Diagnostics(
            rewriter_failures=rewritten.failures, generated_tokens=rewritten.generated_tokens
        )
        yield RewritesStage(
            candidates=[
                Candidate(
                    text=c.text,
                    source=c.source,
                    accepted=j.accepted,
                    reason=j.reason,
                    relevance=j.score,
                    judges=j.engine_scores,
                )
                for c, j in zip(candidates, intent, strict=True)
            ],
            dropped_candidates=dropped,
            diagnostics=diagnostics,
        )

        kept = [c for c, j in zip(candidates, intent, strict=True) if j.accepted]
        rewrite_hits: list[list[Hit]] = []
        if kept:
            rewrite_hits = await clock.time(
                "search_rewrites", self.retriever.search([c.text for c in kept], request.top_k)
            )
        searches = [(query, query_hits[0])] + [(c.text, h) for c, h in zip(kept, rewrite_hits, strict=True)]
        yield RetrievalStage(
            searches=[
                Search(
                    text=text,
                    hits=[SearchHit(product_id=h.product_id, title=h.title, score=h.score) for h in hits],
                )
                for text, hits in searches
            ]
        )

        found = _merge_hits(searches)
        products = list(found.values())
        judgments = await clock.time(
            "judge_products",
            self.judge.judge(query, [f.hit.text for f in products], PairKind.QUERY_PRODUCT),
        )
        pairs = sorted(
            (_pair(query, f, j) for f, j in zip(products, judgments, strict=True)),
            key=lambda p: p.score,
            reverse=True,
        )
        yield JudgmentsStage(pairs=pairs)

        rewrites = rank_rewrites(
            candidates,
            intent,
            dict(zip((c.text for c in kept), rewrite_hits, strict=True)),
            query_hits[0],
            pairs,
            self.settings.weights,
            self.settings.relevance_floor,
        )
        clock.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield SynthesisResult(
            query=query,
            rewrites=rewrites,
            dropped_candidates=dropped,
            pairs=pairs,
            accepted_count=sum(1 for p in pairs if p.accepted),
            timings_ms=clock.timings_ms,
            pipeline_version=version,
            judge_version=self.judge_version,
            diagnostics=diagnostics,
            origin=request.origin,
        )
