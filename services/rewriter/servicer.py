"""Rewriter gRPC servicer: proto <-> domain, and the merge of every engine's candidates."""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import Counter

from services.core.catalog import MAX_FIELD_CHARS
from services.core.errors import InvalidInput, NotReady
from services.core.grpc_server import GrpcService
from services.core.metrics import GRPC_ITEMS
from services.core.text import clean, normalize_query
from services.gen.synth.v1 import common_pb2, rewriter_pb2, rewriter_pb2_grpc
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import (
    ENGINES,
    LLMEngine,
    ProductInput,
    Proposal,
    RewriteEngine,
    RewriteInput,
    copy_reason,
)
from services.rewriter.parsing import Dropped
from services.rewriter.prompts import PromptTemplate, load_prompt

log = logging.getLogger(__name__)

# Leave this much of the caller's deadline for merging and the reply.
DEADLINE_MARGIN_S = 0.2
MAX_FEEDBACK = 20
# Feedback is the titles of retrieved products: never longer than a catalog title may be.
MAX_FEEDBACK_CHARS = MAX_FIELD_CHARS["title"]
MAX_PRODUCT_FIELD = 2000  # a product's brand, category or description (the prompt keeps less of it)
PROBE_DEADLINE_S = 60.0

ENGINE_FAILURES = Counter(
    "tailsynth_rewriter_engine_failures_total",
    "Rewrite engine calls that failed (the other engines' candidates were still returned).",
    ["engine", "kind"],
)


class EngineFailed(Exception):
    def __init__(self, engine: str, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.engine = engine
        self.kind = kind


def _merge(query: str, proposals: list[Proposal], copy_reason: str = "copy_of_query") -> Proposal:
    """One list over all engines, in engine order; a text proposed twice is kept once."""
    merged = Proposal()
    seen = {normalize_query(query)}
    for proposal in proposals:
        merged.tokens += proposal.tokens
        merged.dropped += proposal.dropped
        for candidate in proposal.candidates:
            key = normalize_query(candidate.text)
            if key in seen:
                reason = copy_reason if key == normalize_query(query) else "duplicate"
                merged.dropped.append(Dropped(candidate.text, f"{reason} ({candidate.source})"))
                continue
            seen.add(key)
            merged.candidates.append(candidate)
    return merged


class RewriterService(GrpcService, rewriter_pb2_grpc.RewriterServicer):
    name = "rewriter"
    full_name = "synth.v1.Rewriter"

    def __init__(self, settings: RewriterSettings) -> None:
        self.settings = settings
        self.engines: list[RewriteEngine] = [
            ENGINES.get(name)(settings, self.run_blocking) for name in settings.engine_names
        ]
        self.prompts: dict[str, PromptTemplate] = {name: load_prompt(name) for name in settings.prompt_names}
        self.llm = any(isinstance(engine, LLMEngine) for engine in self.engines)

    def register(self, server: grpc.aio.Server) -> None:
        rewriter_pb2_grpc.add_RewriterServicer_to_server(self, server)

    async def load(self) -> None:
        for engine in self.engines:
            await engine.start()
        self.loaded = True

    async def close(self) -> None:
        for engine in self.engines:
            await engine.close()
        await super().close()

    async def probe(self) -> None:
        self.require_loaded()
        # A generous deadline: the probe may wait behind real requests on the model's worker thread, and a
        # busy model is not a broken one.
        proposal, failures = await self._propose(
            RewriteInput(query="drill", n=1, seed=0, deadline_s=PROBE_DEADLINE_S)
        )
        if failures and len(failures) == len(self.engines):
            raise RuntimeError(f"every engine failed: {failures[0]}")
        # An LLM always generates something for "drill"; the catalog engine rightly leaves it alone.
        llm = any(isinstance(engine, LLMEngine) for engine in self.engines)
        if llm and not proposal.candidates and not proposal.dropped:
            raise RuntimeError("the engines generated nothing")

    @property
    def version(self) -> str:
        s = self.settings
        sampling = f"t={s.temperature},p={s.top_p},max={s.max_new_tokens},over={s.oversample}"
        engines = ";".join(f"{e.name}:{e.version}" for e in self.engines)
        # Each prompt's version hashes its file: editing a template changes every cache key.
        prompts = sorted(p.version for p in self.prompts.values()) if self.llm else []
        return f"{engines}|{','.join(prompts) or 'no-prompt'}|{sampling}"

    async def _run_engine(self, engine: RewriteEngine, request: RewriteInput) -> Proposal:
        try:
            if request.deadline_s is None:
                return await engine.propose(request)
            return await asyncio.wait_for(engine.propose(request), request.deadline_s)
        except TimeoutError:
            raise EngineFailed(
                engine.name, "timeout", f"no answer within {request.deadline_s:.1f}s"
            ) from None
        except (InvalidInput, NotReady):
            raise
        except Exception as error:  # one engine's failure must not fail the others
            log.warning("rewrite engine %s failed: %r", engine.name, error)
            raise EngineFailed(engine.name, "error", str(error)[:300]) from error

    async def _propose(self, request: RewriteInput) -> tuple[Proposal, list[EngineFailed]]:
        outcomes = await asyncio.gather(
            *(self._run_engine(engine, request) for engine in self.engines), return_exceptions=True
        )
        proposals: list[Proposal] = []
        failures: list[EngineFailed] = []
        for outcome in outcomes:
            if isinstance(outcome, EngineFailed):
                ENGINE_FAILURES.labels(outcome.engine, outcome.kind).inc()
                failures.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                proposals.append(outcome)
        return _merge(request.query, proposals, copy_reason(request)), failures

    async def Rewrite(
        self, request: rewriter_pb2.RewriteRequest, context: grpc.aio.ServicerContext
    ) -> rewriter_pb2.RewriteResponse:
        product = self._product(request)
        query = product.title if product is not None else clean(request.query)
        if not query:
            raise InvalidInput("query is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(f"query is longer than {self.settings.max_query_chars} characters")
        if not 1 <= request.num_rewrites <= self.settings.max_num_rewrites:
            raise InvalidInput(f"num_rewrites must be between 1 and {self.settings.max_num_rewrites}")
        if len(request.feedback) > MAX_FEEDBACK:
            raise InvalidInput(f"at most {MAX_FEEDBACK} feedback titles")
        feedback = tuple(clean(title) for title in request.feedback)
        for i, title in enumerate(feedback):
            if len(title) > MAX_FEEDBACK_CHARS:
                raise InvalidInput(f"feedback[{i}] is longer than {MAX_FEEDBACK_CHARS} characters")
        self.require_loaded()
        remaining = context.time_remaining()
        deadline = max(remaining - DEADLINE_MARGIN_S, 0.1) if remaining is not None else None
        proposal, failures = await self._propose(
            RewriteInput(
                query=query,
                n=request.num_rewrites,
                seed=request.seed if request.HasField("seed") else None,
                deadline_s=deadline,
                feedback=tuple(title for title in feedback if title),
                prompt=request.prompt,
                product=product,
            )
        )
        if len(failures) == len(self.engines):
            raise NotReady(f"every rewrite engine failed: {'; '.join(f'{f.engine}: {f}' for f in failures)}")
        self.mark_worked()
        GRPC_ITEMS.labels(self.name, "Rewrite").inc(len(proposal.candidates))
        return rewriter_pb2.RewriteResponse(
            candidates=[rewriter_pb2.Candidate(text=c.text, source=c.source) for c in proposal.candidates],
            dropped=[rewriter_pb2.DroppedCandidate(text=d.text, reason=d.reason) for d in proposal.dropped],
            engine=self.settings.engines,
            generated_tokens=proposal.tokens,
            failures=[rewriter_pb2.EngineFailure(engine=f.engine, error=str(f)) for f in failures],
        )

    def _product(self, request: rewriter_pb2.RewriteRequest) -> ProductInput | None:
        """The request's product when it names a product prompt; refuses an unknown prompt or a mismatch."""
        if not request.prompt:
            template = None
        elif request.prompt in self.prompts:
            template = self.prompts[request.prompt]
        else:
            raise InvalidInput(
                f"unknown prompt {request.prompt!r}; available: {', '.join(sorted(self.prompts))}"
            )
        if template is None or template.task != "product":
            if request.HasField("product"):
                raise InvalidInput(f"prompt {request.prompt or self.settings.prompt!r} takes no product")
            return None
        p = request.product
        product = ProductInput(
            title=clean(p.title),
            brand=clean(p.brand)[:MAX_PRODUCT_FIELD],
            category=clean(p.category)[:MAX_PRODUCT_FIELD],
            description=clean(p.description)[:MAX_PRODUCT_FIELD],
        )
        if not product.title:
            raise InvalidInput(f"prompt {request.prompt!r} writes queries for a product: give its title")
        if not self.llm:
            raise InvalidInput(
                f"prompt {request.prompt!r} needs an LLM engine; TAILSYNTH_REWRITER_ENGINES is "
                f"{self.settings.engines!r}"
            )
        return product

    async def Describe(
        self, request: common_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.ServiceInfo:
        self.require_loaded()
        details = {"prompts": ",".join(sorted(self.prompts))}
        for engine in self.engines:
            if isinstance(engine, LLMEngine):
                details |= engine.details()
        return common_pb2.ServiceInfo(
            service=self.name, engine=self.settings.engines, version=self.version, details=details
        )
