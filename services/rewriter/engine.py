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
from pathlib import Path
from typing import Any

from services.core.engine import Engine
from services.core.errors import NotReady
from services.core.llm.model_dir import trained_manifest
from services.core.registry import Registry
from services.rewriter.config import RewriterSettings
from services.rewriter.parsing import Dropped, parse_candidates
from services.rewriter.prompts import PromptTemplate, load_prompt

# Runs blocking model work on the service's worker thread (GrpcService.run_blocking).
BlockingRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class ProductInput:
    """The product a product prompt writes shopper queries for."""

    title: str
    brand: str = ""
    category: str = ""
    description: str = ""

    def prompt_text(self) -> str:
        """The user turn of a product prompt (its few-shot turns are written the same way)."""
        lines = [f"Product: {self.title}"]
        if self.brand and self.brand.casefold() not in self.title.casefold():
            lines.append(f"Brand: {self.brand}")
        if self.category:
            lines.append(f"Category: {self.category}")
        if self.description:
            lines.append(f"Description: {self.description[:MAX_PROMPT_DESCRIPTION]}")
        return "\n".join(lines)


# A description's first characters say what the product is for; a small model loses the thread on more.
MAX_PROMPT_DESCRIPTION = 240


@dataclass(frozen=True)
class RewriteInput:
    query: str  # for a product prompt: the product's title, which no candidate may copy
    n: int  # candidates wanted from this engine
    seed: int | None = None
    deadline_s: float | None = None  # seconds this engine may take; None = no limit
    feedback: tuple[str, ...] = ()  # titles of the query's own top products, best first
    prompt: str = ""  # the template to write with; "" = the configured rewrite prompt
    product: ProductInput | None = None  # set exactly when the prompt is a product prompt


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


def copy_reason(request: RewriteInput) -> str:
    """Why a candidate equal to request.query is dropped: it copies the query, or the product's title."""
    return "copy_of_title" if request.product is not None else "copy_of_query"


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
    model_path: Path | None = None  # the local model directory it serves (hf, vllm)

    def details(self) -> dict[str, str]:
        """What Describe says about the served model: its directory and, for a model `synth train
        rewriter` wrote, its training version, stage and base model (the version names its weights)."""
        if self.model_path is None:
            return {}
        manifest = trained_manifest(self.model_path)
        out = {f"{self.name}_model": str(self.model_path)}
        if manifest:
            out[f"{self.name}_trained"] = f"{manifest.get('version')} (stage {manifest.get('stage')})"
            out[f"{self.name}_trained_from"] = str(manifest.get("base_model", {}).get("id", ""))
        return out

    def __init__(self, settings: RewriterSettings, run_blocking: BlockingRunner) -> None:
        super().__init__(settings, run_blocking)
        self.prompt: PromptTemplate = load_prompt(settings.prompt)
        # Every template a request may name, by name (the configured rewrite prompt among them).
        self.prompts: dict[str, PromptTemplate] = {name: load_prompt(name) for name in settings.prompt_names}

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
        template = self.prompts[request.prompt] if request.prompt else self.prompt
        text = request.product.prompt_text() if request.product is not None else request.query
        generation = await self.generate(template.messages(text), samples, request.seed, request.deadline_s)
        kept, dropped = parse_candidates(
            generation.texts,
            request.query,
            self.settings.max_rewrite_words,
            self.settings.max_rewrite_chars,
            copy_reason=copy_reason(request),
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
