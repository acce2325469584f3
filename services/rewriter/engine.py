"""Rewrite engines propose candidate rewrites for one query; the servicer depends only on this.

Two kinds: LLM engines (hf, vllm, openai) sample completions from a prompt and parse them;
the catalog engine derives candidates from the catalog itself (no LLM). The servicer runs every
configured engine concurrently and merges their candidates, each tagged with its source.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.core.engine import Engine
from services.core.errors import NotReady
from services.core.registry import Registry
from services.rewriter.config import RewriterSettings
from services.rewriter.parsing import Dropped, parse_candidates
from services.rewriter.prompts import PromptTemplate, load_prompt

# Runs blocking model work on the service's worker thread (GrpcService.run_blocking).
BlockingRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class RewriteInput:
    query: str
    n: int  # candidates wanted from this engine
    seed: int | None = None
    deadline_s: float | None = None  # seconds this engine may take; None = no limit
    feedback: tuple[str, ...] = ()  # titles of the query's own top products, best first


@dataclass(frozen=True)
class Proposed:
    text: str
    source: str  # e.g. "llm:vllm", "catalog:spell"


@dataclass
class Proposal:
    candidates: list[Proposed] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    tokens: int = 0


@dataclass(frozen=True)
class Generation:
    texts: list[str]
    tokens: int


class RewriteEngine(Engine[RewriterSettings]):
    def __init__(self, settings: RewriterSettings, run_blocking: BlockingRunner) -> None:
        super().__init__(settings)
        self.run_blocking = run_blocking

    async def start(self) -> None:
        """Load the engine; by default its blocking load() on the worker thread."""
        await self.run_blocking(self.load)

    async def close(self) -> None:
        """Release what start() acquired (engine processes, connections)."""

    @abstractmethod
    async def propose(self, request: RewriteInput) -> Proposal:
        """Candidates for one query; garbage is dropped with a reason, never raised."""


class LLMEngine(RewriteEngine):
    """Prompt -> n sampled completions -> parsed, de-duplicated candidates."""

    closed = False  # set by close(): no new generation starts

    def __init__(self, settings: RewriterSettings, run_blocking: BlockingRunner) -> None:
        super().__init__(settings, run_blocking)
        self.prompt: PromptTemplate = load_prompt(settings.prompt)

    def not_ready(self) -> NotReady:
        """What generate() raises before start() finished or after close(): the same for every engine (the
        servicer answers UNAVAILABLE)."""
        return NotReady(f"{self.name} engine is {'shutting down' if self.closed else 'not started'}")

    @abstractmethod
    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        """n independent samples for one chat conversation."""

    async def propose(self, request: RewriteInput) -> Proposal:
        samples = math.ceil(request.n * self.settings.oversample)
        generation = await self.generate(
            self.prompt.messages(request.query), samples, request.seed, request.deadline_s
        )
        kept, dropped = parse_candidates(
            generation.texts, request.query, self.settings.max_rewrite_words, self.settings.max_rewrite_chars
        )
        source = f"llm:{self.name}"
        candidates = [Proposed(c.text, source) for c in kept[: request.n]]
        return Proposal(candidates, dropped, generation.tokens)


ENGINES: Registry[RewriteEngine] = Registry(
    "rewriter engine",
    {
        "hf": "services.rewriter.engines.hf:HFEngine",
        "vllm": "services.rewriter.engines.vllm:VLLMEngine",
        "openai": "services.rewriter.engines.openai:OpenAIEngine",
        "catalog": "services.rewriter.engines.catalog:CatalogEngine",
    },
    extras={"hf": "rewriter", "vllm": "vllm", "openai": "rewriter", "catalog": "rewriter"},
)
