"""Per-rewrite rewards from live retrieval and judgments (BEQUE-style)."""

from __future__ import annotations

from services.pipeline.models import Rewards


def rewrite_rewards(
    relevance: float,
    retrieved: set[str],
    query_retrieved: set[str],
    others_retrieved: list[set[str]],
    accepted: set[str],
    top_k: int,
) -> Rewards:
    """Rewards of one rewrite.

    increment: accepted products it adds beyond what the query itself retrieved, / top_k.
    alignment: share of its retrieved products accepted for the original query.
    diversity: share of its retrieved products that no other rewrite retrieved.
    """
    if not retrieved:
        return Rewards(relevance=relevance, increment=0.0, alignment=0.0, diversity=0.0)
    new_relevant = (retrieved & accepted) - query_retrieved
    elsewhere = set().union(*others_retrieved) if others_retrieved else set()
    return Rewards(
        relevance=relevance,
        increment=len(new_relevant) / top_k,
        alignment=len(retrieved & accepted) / len(retrieved),
        diversity=len(retrieved - elsewhere) / len(retrieved),
    )
