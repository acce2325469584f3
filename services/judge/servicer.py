"""Judge gRPC servicer: proto <-> domain only.

Every pair is scored by each configured engine that judges its kind (through that engine's batcher
and the judgment cache); the acceptance policy turns the scores into one judgment.
"""

from __future__ import annotations

import asyncio

import grpc

from services.core.errors import InvalidInput
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean
from services.gen.synth.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from services.judge.batching import EngineScorer
from services.judge.cache import ScoreCache
from services.judge.config import JudgeSettings
from services.judge.engine import JudgeEngine, Pair, PairKind, check_kinds, create_engines
from services.judge.policy import Decision, Label
from services.judge.policy_file import policy_from_settings

MAX_QUERY_CHARS = 2000
MAX_TEXT_CHARS = 20_000
JUDGED_TEXT_CHARS = 2000  # the encoders see ~256 tokens; longer text only costs time

KINDS = {
    judge_pb2.PAIR_KIND_QUERY_PRODUCT: PairKind.QUERY_PRODUCT,
    judge_pb2.PAIR_KIND_QUERY_REWRITE: PairKind.QUERY_REWRITE,
}
LABELS = {
    Label.IRRELEVANT: judge_pb2.RELEVANCE_LABEL_IRRELEVANT,
    Label.PARTIAL: judge_pb2.RELEVANCE_LABEL_PARTIAL,
    Label.EXACT: judge_pb2.RELEVANCE_LABEL_EXACT,
}
PROBE: Pair = ("drill", "cordless drill", PairKind.QUERY_REWRITE)


def validate_pairs(request: judge_pb2.JudgeRequest, max_pairs: int) -> list[Pair]:
    """Cleaned pairs; text beyond JUDGED_TEXT_CHARS is cut off (the judges would not read it)."""
    if not request.pairs:
        raise InvalidInput("pairs is empty")
    if len(request.pairs) > max_pairs:
        raise InvalidInput(f"{len(request.pairs)} pairs in one call; the limit is {max_pairs}")
    pairs = []
    for i, pair in enumerate(request.pairs):
        kind = KINDS.get(pair.kind)
        if kind is None:
            raise InvalidInput(f"pairs[{i}].kind must be QUERY_PRODUCT or QUERY_REWRITE")
        query, text = clean(pair.query), clean(pair.text)
        if not query or not text:
            raise InvalidInput(f"pairs[{i}] has an empty {'query' if not query else 'text'}")
        if len(query) > MAX_QUERY_CHARS or len(text) > MAX_TEXT_CHARS:
            raise InvalidInput(
                f"pairs[{i}] is too long (query <= {MAX_QUERY_CHARS}, text <= {MAX_TEXT_CHARS} chars)"
            )
        pairs.append((query, text[:JUDGED_TEXT_CHARS], kind))
    return pairs


def judgment(decision: Decision, cached: dict[str, bool]) -> judge_pb2.Judgment:
    return judge_pb2.Judgment(
        score=decision.score,
        label=LABELS[decision.label],
        accepted=decision.accepted,
        reason=decision.reason,
        engine_scores=[
            judge_pb2.EngineScore(
                engine=v.engine,
                score=v.score,
                threshold=v.threshold,
                passed=v.passed,
                cached=cached[v.engine],
            )
            for v in decision.engines
        ],
    )


class JudgeService(GrpcService, judge_pb2_grpc.JudgeServicer):
    name = "judge"
    full_name = "synth.v1.Judge"

    def __init__(self, settings: JudgeSettings, engines: list[JudgeEngine] | None = None) -> None:
        self.settings = settings
        engines = create_engines(settings) if engines is None else engines
        check_kinds(engines)
        self.policy = policy_from_settings(settings)
        self.policy.check_engines(e.name for e in engines)
        self.cache = (
            ScoreCache(settings.cache_url, settings.cache_ttl_s, settings.cache_timeout_s)
            if settings.cache_url
            else None
        )
        self.scorers = [
            EngineScorer(
                engine,
                self.cache,
                max_pairs=settings.batch_max_pairs,
                wait_ms=settings.batch_wait_ms,
                on_work=self.mark_worked,
            )
            for engine in engines
        ]

    def register(self, server: grpc.aio.Server) -> None:
        judge_pb2_grpc.add_JudgeServicer_to_server(self, server)

    async def load(self) -> None:
        await asyncio.gather(*(scorer.load() for scorer in self.scorers))
        self.loaded = True

    async def probe(self) -> None:
        """Real work on every engine, past the cache."""
        self.require_loaded()
        for scorer in self.scorers:
            kind = (
                PairKind.QUERY_REWRITE
                if PairKind.QUERY_REWRITE in scorer.engine.kinds
                else PairKind.QUERY_PRODUCT
            )
            await scorer.score([(PROBE[0], PROBE[1], kind)], use_cache=False)

    async def close(self) -> None:
        await asyncio.gather(*(scorer.close() for scorer in self.scorers))
        if self.cache is not None:
            await self.cache.close()
        await super().close()

    @property
    def version(self) -> str:
        engines = "|".join(scorer.engine.version for scorer in self.scorers)
        return f"{engines}|{self.policy.describe()}"

    async def score(self, pairs: list[Pair]) -> list[dict[str, tuple[float, bool]]]:
        """Per pair: engine name -> (score, cached), from every engine that judges its kind."""
        self.require_loaded()
        jobs = []
        for scorer in self.scorers:
            positions = [i for i, (_, _, kind) in enumerate(pairs) if kind in scorer.engine.kinds]
            if positions:
                jobs.append((scorer.name, positions, scorer.score([pairs[i] for i in positions])))
        results = await asyncio.gather(*(job for _, _, job in jobs))
        per_pair: list[dict[str, tuple[float, bool]]] = [{} for _ in pairs]
        for (name, positions, _), scores in zip(jobs, results, strict=True):
            for i, score in zip(positions, scores, strict=True):
                per_pair[i][name] = score
        return per_pair

    async def Judge(
        self, request: judge_pb2.JudgeRequest, context: grpc.aio.ServicerContext
    ) -> judge_pb2.JudgeResponse:
        pairs = validate_pairs(request, self.settings.max_pairs)
        scored = await self.score(pairs)
        GRPC_ITEMS.labels(self.name, "Judge").inc(len(pairs))
        judgments = []
        for (_, _, kind), engines in zip(pairs, scored, strict=True):
            decision = self.policy.decide(kind, {name: score for name, (score, _) in engines.items()})
            judgments.append(judgment(decision, {name: cached for name, (_, cached) in engines.items()}))
        return judge_pb2.JudgeResponse(judgments=judgments, judge_version=self.version)

    async def Describe(
        self, request: common_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ServiceInfo:
        self.require_loaded()
        details = {
            "policy": self.policy.describe(),
            "cache": "on" if self.cache else "off",
            "batch_max_pairs": str(self.settings.batch_max_pairs),
        }
        for scorer in self.scorers:
            details[f"engine.{scorer.name}"] = ",".join(sorted(k.value for k in scorer.engine.kinds))
        return common_pb2.ServiceInfo(
            service=self.name,
            engine=",".join(scorer.name for scorer in self.scorers),
            version=self.version,
            details=details,
        )
