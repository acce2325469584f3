"""THE synthesis pipeline: query -> rewrites -> retrieval -> judgments -> scored pairs.

The gateway, the CLI and the worker all call SynthesisPipeline.run(); nothing else orchestrates
the services.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from services import __version__
from services.core.text import clean
from services.gen.synth.v1 import judge_pb2
from services.pipeline.clients import Hit, JudgeClient, RetrieverClient, RewriterClient
from services.pipeline.config import PipelineSettings
from services.pipeline.ids import pair_id
from services.pipeline.models import DroppedCandidate, Pair, Rewards, Rewrite, SynthesisResult
from services.pipeline.rewards import rewrite_rewards

# Bump when the pipeline's own logic changes what it returns for the same services.
ALGORITHM_VERSION = "1"
T = TypeVar("T")

LABELS = {
    judge_pb2.RELEVANCE_LABEL_EXACT: "exact",
    judge_pb2.RELEVANCE_LABEL_PARTIAL: "partial",
    judge_pb2.RELEVANCE_LABEL_IRRELEVANT: "irrelevant",
}


@dataclass(frozen=True)
class SynthesisRequest:
    query: str
    num_rewrites: int = 4
    top_k: int = 20


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


class SynthesisPipeline:
    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings
        self.rewriter = RewriterClient(settings.rewriter_target, settings.rewrite_timeout_s)
        self.retriever = RetrieverClient(settings.retriever_target, settings.search_timeout_s)
        self.judge = JudgeClient(settings.judge_target, settings.judge_timeout_s)
        self._version: tuple[float, str] | None = None

    async def close(self) -> None:
        await asyncio.gather(self.rewriter.close(), self.retriever.close(), self.judge.close())

    async def healthy(self) -> dict[str, bool]:
        names = ("rewriter", "retriever", "judge")
        checks = await asyncio.gather(self.rewriter.healthy(), self.retriever.healthy(), self.judge.healthy())
        return dict(zip(names, checks, strict=True))

    async def version(self) -> str:
        """tailsynth version + hash of what every service serves (models, index, prompt, policy)."""
        now = time.monotonic()
        if self._version and now - self._version[0] < self.settings.version_ttl_s:
            return self._version[1]
        infos = await asyncio.gather(
            self.rewriter.describe(), self.retriever.describe(), self.judge.describe()
        )
        parts = [ALGORITHM_VERSION] + [f"{i.service}={i.engine}:{i.version}" for i in infos]
        version = f"{__version__}+{hashlib.sha256('|'.join(parts).encode()).hexdigest()[:12]}"
        self._version = (now, version)
        return version

    async def run(self, request: SynthesisRequest) -> SynthesisResult:
        clock = _Stopwatch()
        started = time.perf_counter()
        query = clean(request.query)
        version = await self.version()

        # The query's own retrieval does not wait for the LLM.
        rewritten, query_hits = await asyncio.gather(
            clock.time("rewrite", self.rewriter.rewrite(query, request.num_rewrites)),
            clock.time("search_query", self.retriever.search([query], request.top_k)),
        )
        candidates = list(rewritten.candidates)
        intent = await clock.time(
            "judge_rewrites",
            self.judge.judge(query, [c.text for c in candidates], judge_pb2.PAIR_KIND_QUERY_REWRITE),
        )
        kept = [c for c, j in zip(candidates, intent, strict=True) if j.accepted]
        rewrite_hits: list[list[Hit]] = []
        if kept:
            rewrite_hits = await clock.time(
                "search_rewrites", self.retriever.search([c.text for c in kept], request.top_k)
            )

        found: dict[str, _Found] = {}
        for text, hits, is_query in [(query, query_hits[0], True)] + [
            (c.text, hits, False) for c, hits in zip(kept, rewrite_hits, strict=True)
        ]:
            for hit in hits:
                entry = found.setdefault(hit.product_id, _Found(hit, [], False))
                entry.retrieved_by.append(text)
                entry.found_by_query |= is_query
                if hit.score > entry.hit.score:
                    entry.hit = hit

        products = list(found.values())
        judgments = await clock.time(
            "judge_products",
            self.judge.judge(query, [f.hit.text for f in products], judge_pb2.PAIR_KIND_QUERY_PRODUCT),
        )
        pairs = [
            Pair(
                pair_id=pair_id(query, f.hit.product_id),
                product_id=f.hit.product_id,
                title=f.hit.title,
                score=round(j.score, 4),
                label=LABELS.get(j.label, "irrelevant"),
                accepted=j.accepted,
                reason=j.reason,
                retrieved_by=f.retrieved_by,
                found_by_query=f.found_by_query,
                retrieval_score=round(f.hit.score, 4),
            )
            for f, j in zip(products, judgments, strict=True)
        ]
        pairs.sort(key=lambda p: p.score, reverse=True)
        accepted_ids = {p.product_id for p in pairs if p.accepted}

        query_ids = {h.product_id for h in query_hits[0]}
        retrieved = {c.text: {h.product_id for h in hits} for c, hits in zip(kept, rewrite_hits, strict=True)}
        rewrites = []
        for candidate, judgment in zip(candidates, intent, strict=True):
            mine = retrieved.get(candidate.text, set())
            others = [ids for text, ids in retrieved.items() if text != candidate.text]
            rewards = (
                rewrite_rewards(judgment.score, mine, query_ids, others, accepted_ids, request.top_k)
                if judgment.accepted
                else Rewards(relevance=judgment.score, increment=0.0, alignment=0.0, diversity=0.0)
            )
            rewrites.append(
                Rewrite(
                    text=candidate.text,
                    source=candidate.source,
                    accepted=judgment.accepted,
                    reason=judgment.reason,
                    rewards=rewards,
                    retrieved=len(mine),
                )
            )
        clock.timings_ms["total"] = round((time.perf_counter() - started) * 1000, 1)
        return SynthesisResult(
            query=query,
            rewrites=rewrites,
            dropped_candidates=[DroppedCandidate(text=d.text, reason=d.reason) for d in rewritten.dropped],
            pairs=pairs,
            accepted_count=len(accepted_ids),
            timings_ms=clock.timings_ms,
            pipeline_version=version,
        )
