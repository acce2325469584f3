"""Judge gRPC servicer: proto <-> domain only."""

from __future__ import annotations

import grpc

from services.core.errors import InvalidInput
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean
from services.gen.synth.v1 import common_pb2, judge_pb2, judge_pb2_grpc
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, JudgeEngine, PairKind
from services.judge.policy import AcceptancePolicy, Label

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


def validate_pairs(request: judge_pb2.JudgeRequest, max_pairs: int) -> list[tuple[str, str, PairKind]]:
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


class JudgeService(GrpcService, judge_pb2_grpc.JudgeServicer):
    name = "judge"
    full_name = "synth.v1.Judge"

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings
        self.engine: JudgeEngine = ENGINES.get(settings.engine)(settings)
        self.policy = AcceptancePolicy.from_settings(settings)

    def register(self, server: grpc.aio.Server) -> None:
        judge_pb2_grpc.add_JudgeServicer_to_server(self, server)

    async def load(self) -> None:
        await self.run_blocking(self.engine.load)
        self.loaded = True

    async def _score(self, pairs: list[tuple[str, str, PairKind]]) -> list[float]:
        self.require_loaded()
        return await self.run_blocking(self.engine.score, pairs)

    async def probe(self) -> None:
        await self._score([("drill", "cordless drill", PairKind.QUERY_PRODUCT)])

    @property
    def version(self) -> str:
        return f"{self.engine.version}|{self.policy.describe()}"

    async def Judge(
        self, request: judge_pb2.JudgeRequest, context: grpc.aio.ServicerContext
    ) -> judge_pb2.JudgeResponse:
        pairs = validate_pairs(request, self.settings.max_pairs)
        scores = await self._score(pairs)
        GRPC_ITEMS.labels(self.name, "Judge").inc(len(pairs))
        judgments = []
        for (_, _, kind), score in zip(pairs, scores, strict=True):
            decision = self.policy.decide(kind, score)
            judgments.append(
                judge_pb2.Judgment(
                    score=decision.score,
                    label=LABELS[decision.label],
                    accepted=decision.accepted,
                    reason=decision.reason,
                )
            )
        return judge_pb2.JudgeResponse(judgments=judgments, judge_version=self.version)

    async def Describe(
        self, request: common_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ServiceInfo:
        self.require_loaded()
        return common_pb2.ServiceInfo(
            service=self.name,
            engine=self.engine.name,
            version=self.version,
            details={"policy": self.policy.describe()},
        )
