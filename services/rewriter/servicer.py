"""Rewriter gRPC servicer: proto <-> domain only."""

from __future__ import annotations

import math

import grpc

from services.core.errors import InvalidInput
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean
from services.gen.synth.v1 import common_pb2, rewriter_pb2, rewriter_pb2_grpc
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import ENGINES, RewriteEngine
from services.rewriter.parsing import parse_candidates
from services.rewriter.prompts import load_prompt

# Leave this much of the caller's deadline for parsing and the reply.
DEADLINE_MARGIN_S = 0.2


class RewriterService(GrpcService, rewriter_pb2_grpc.RewriterServicer):
    name = "rewriter"
    full_name = "synth.v1.Rewriter"

    def __init__(self, settings: RewriterSettings) -> None:
        self.settings = settings
        self.prompt = load_prompt(settings.prompt)
        self.engine: RewriteEngine = ENGINES.get(settings.engine)(settings)

    def register(self, server: grpc.aio.Server) -> None:
        rewriter_pb2_grpc.add_RewriterServicer_to_server(self, server)

    async def load(self) -> None:
        await self.run_blocking(self.engine.load)
        self.loaded = True

    async def probe(self) -> None:
        self.require_loaded()
        generation = await self.run_blocking(self.engine.generate, self.prompt.messages("drill"), 1, 0, 10.0)
        if not generation.texts:
            raise RuntimeError("the model generated nothing")

    @property
    def version(self) -> str:
        s = self.settings
        sampling = f"t={s.temperature},p={s.top_p},max={s.max_new_tokens}"
        return f"{self.engine.name}:{self.engine.version}|{self.prompt.version}|{sampling}"

    async def Rewrite(
        self, request: rewriter_pb2.RewriteRequest, context: grpc.aio.ServicerContext
    ) -> rewriter_pb2.RewriteResponse:
        query = clean(request.query)
        if not query:
            raise InvalidInput("query is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(f"query is longer than {self.settings.max_query_chars} characters")
        if not 1 <= request.num_rewrites <= self.settings.max_num_rewrites:
            raise InvalidInput(f"num_rewrites must be between 1 and {self.settings.max_num_rewrites}")
        self.require_loaded()
        samples = math.ceil(request.num_rewrites * self.settings.oversample)
        remaining = context.time_remaining()
        max_time = max(remaining - DEADLINE_MARGIN_S, 0.1) if remaining is not None else None
        seed = request.seed if request.HasField("seed") else None
        generation = await self.run_blocking(
            self.engine.generate, self.prompt.messages(query), samples, seed, max_time
        )
        kept, dropped = parse_candidates(
            generation.texts, query, self.settings.max_rewrite_words, self.settings.max_rewrite_chars
        )
        kept = kept[: request.num_rewrites]
        GRPC_ITEMS.labels(self.name, "Rewrite").inc(len(kept))
        source = f"llm:{self.engine.name}"
        return rewriter_pb2.RewriteResponse(
            candidates=[rewriter_pb2.Candidate(text=c.text, source=source) for c in kept],
            dropped=[rewriter_pb2.DroppedCandidate(text=d.text, reason=d.reason) for d in dropped],
            engine=self.engine.name,
            generated_tokens=generation.tokens,
        )

    async def Describe(
        self, request: common_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ServiceInfo:
        self.require_loaded()
        return common_pb2.ServiceInfo(service=self.name, engine=self.engine.name, version=self.version)
