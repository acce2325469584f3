"""Synthesis results for tests, built the way the pipeline builds them: one helper per model, every field
filled with a plain default that a test overrides where it matters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.pipeline.ids import pair_id
from services.pipeline.models import Pair, Rewards, Rewrite, SynthesisResult


def pair(query: str, product_id: str, score: float = 0.9, accepted: bool = True, **fields: Any) -> Pair:
    """A judged pair whose id is the real pair_id of (query, product id); the label follows accepted."""
    values: dict[str, Any] = {
        "pair_id": pair_id(query, product_id),
        "product_id": product_id,
        "title": f"title {product_id}",
        "score": score,
        "label": "exact" if accepted else "irrelevant",
        "accepted": accepted,
        "reason": "r",
        "retrieved_by": [query],
        "found_by_query": True,
        "retrieval_score": 0.5,
    }
    return Pair(**(values | fields))


def rewrite(
    text: str, reward: float, source: str = "llm:hf", accepted: bool = True, **fields: Any
) -> Rewrite:
    values: dict[str, Any] = {
        "text": text,
        "source": source,
        "accepted": accepted,
        "reason": "ok" if accepted else "off intent",
        "retrieved": 2,
        "rewards": Rewards(
            intent=0.9, product_relevance=0.7, relevance=0.8, increment=0.5, alignment=0.5, diversity=1.0
        ),
        "reward": reward,
        "rank": 1,
    }
    return Rewrite(**(values | fields))


def result(
    query: str, pairs: Iterable[Pair] = (), rewrites: Iterable[Rewrite] = (), **fields: Any
) -> SynthesisResult:
    """The synthesis of query; accepted_count counts the accepted pairs unless given."""
    pairs = list(pairs)
    values: dict[str, Any] = {
        "query": query,
        "rewrites": list(rewrites),
        "dropped_candidates": [],
        "pairs": pairs,
        "accepted_count": sum(p.accepted for p in pairs),
        "timings_ms": {"total": 1.0},
        "pipeline_version": "test",
    }
    return SynthesisResult(**(values | fields))
