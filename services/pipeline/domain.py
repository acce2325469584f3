"""What the services answer, as the pipeline works on it: plain values, no protobuf.

The clients (services/pipeline/clients.py) translate gRPC messages to and from these, so the pipeline,
the rewards and everything offline that calls the services never see the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from services.core.text import product_text
from services.pipeline.models import DroppedCandidate, EngineFailure


@dataclass(frozen=True)
class Hit:
    product_id: str
    title: str
    text: str  # what the judge reads
    score: float


@dataclass(frozen=True)
class Product:
    """A catalog product as product-side query generation takes it."""

    id: str
    title: str
    brand: str = ""
    category: str = ""
    description: str = ""

    @property
    def text(self) -> str:
        """What the index embeds and the judge reads (the same as a retrieved Hit's text)."""
        return product_text(self.title, self.brand, self.category)


@dataclass(frozen=True)
class RewriteCandidate:
    text: str
    source: str  # the engine that proposed it: llm:hf, catalog:spell, ...


@dataclass(frozen=True)
class Rewritten:
    """The rewriter's answer: usable candidates, what it dropped and why, engines that failed."""

    candidates: list[RewriteCandidate]
    dropped: list[DroppedCandidate] = field(default_factory=list)
    failures: list[EngineFailure] = field(default_factory=list)
    generated_tokens: int = 0


class PairKind(Enum):
    QUERY_PRODUCT = "query_product"
    QUERY_REWRITE = "query_rewrite"


@dataclass(frozen=True)
class Judgment:
    score: float  # the judges' combined score, [0, 1]
    label: str  # exact, partial or irrelevant
    accepted: bool
    reason: str
    engine_scores: dict[str, float] = field(default_factory=dict)  # each judge engine's score
