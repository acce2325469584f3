"""Per-rewrite rewards from live retrieval and judgments (BEQUE-style), their weighted sum, and the ranking
of a query's rewrites by it. Pure functions of what the services answered: no channels, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.pipeline.domain import Hit, Judgment, RewriteCandidate
from services.pipeline.models import Pair, Rewards, Rewrite

REWARD_NAMES = ("relevance", "increment", "alignment", "diversity")


@dataclass(frozen=True)
class RewardWeights:
    relevance: float
    increment: float
    alignment: float
    diversity: float

    @classmethod
    def parse(cls, text: str) -> RewardWeights:
        """ "relevance=0.4,increment=0.3,alignment=0.2,diversity=0.1"; names left out weigh 0."""
        weights = dict.fromkeys(REWARD_NAMES, 0.0)
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in weights:
                raise ValueError(
                    f"expected name=weight with a name among {', '.join(REWARD_NAMES)}: {item!r}"
                )
            try:
                weight = float(value)
            except ValueError:
                raise ValueError(f"weight of {name} is not a number: {value!r}") from None
            if not 0 <= weight <= 100:
                raise ValueError(f"weight of {name} must be between 0 and 100, got {weight}")
            weights[name] = weight
        if sum(weights.values()) <= 0:
            raise ValueError("at least one reward weight must be positive")
        return cls(**weights)


def rewrite_rewards(
    intent: float,
    retrieved: set[str],
    product_scores: dict[str, float],
    query_retrieved: set[str],
    others_retrieved: list[set[str]],
    accepted: set[str],
) -> Rewards:
    """Rewards of one rewrite.

    relevance: mean of the intent judge's score and the mean judge score of the rewrite's products
        against the original query (intent alone when it retrieved nothing).
    increment: accepted products it adds beyond what the query itself retrieved, divided by the
        query's own accepted products (at least 1) -- BEQUE's relative increment; can exceed 1.
    alignment: share of its retrieved products accepted for the original query.
    diversity: share of its retrieved products that no other rewrite retrieved.
    """
    if not retrieved:
        return Rewards(
            intent=intent,
            product_relevance=0.0,
            relevance=intent,
            increment=0.0,
            alignment=0.0,
            diversity=0.0,
        )
    product_relevance = sum(product_scores.get(p, 0.0) for p in retrieved) / len(retrieved)
    new_relevant = (retrieved & accepted) - query_retrieved
    elsewhere = set().union(*others_retrieved) if others_retrieved else set()
    return Rewards(
        intent=intent,
        product_relevance=round(product_relevance, 4),
        relevance=round((intent + product_relevance) / 2, 4),
        increment=round(len(new_relevant) / max(len(query_retrieved & accepted), 1), 4),
        alignment=round(len(retrieved & accepted) / len(retrieved), 4),
        diversity=round(len(retrieved - elsewhere) / len(retrieved), 4),
    )


def weighted_reward(rewards: Rewards, weights: RewardWeights) -> float:
    """The weighted mean of the rewards, in [0, 1]; increment enters as x / (1 + x) to stay bounded."""
    increment = rewards.increment / (1 + rewards.increment)
    total = (
        weights.relevance * rewards.relevance
        + weights.increment * increment
        + weights.alignment * rewards.alignment
        + weights.diversity * rewards.diversity
    )
    norm = weights.relevance + weights.increment + weights.alignment + weights.diversity
    return round(total / norm, 4)


def rank_rewrites(
    candidates: Sequence[RewriteCandidate],
    intent: Sequence[Judgment],
    rewrite_hits: Mapping[str, Sequence[Hit]],
    query_hits: Sequence[Hit],
    pairs: Sequence[Pair],
    weights: RewardWeights,
    relevance_floor: float,
) -> list[Rewrite]:
    """Every candidate with its rewards and weighted reward, best first (rank 1); a candidate the intent
    judge accepted is rejected when its relevance is under the floor.

    intent: the intent judgment of each candidate, in order; rewrite_hits: what each searched rewrite
    (those the intent judge accepted) retrieved, by text; pairs: every retrieved product judged against
    the original query.
    """
    accepted_ids = {p.product_id for p in pairs if p.accepted}
    scores = {p.product_id: p.score for p in pairs}
    query_ids = {h.product_id for h in query_hits}
    retrieved = {text: {h.product_id for h in hits} for text, hits in rewrite_hits.items()}
    scored = []
    for candidate, judgment in zip(candidates, intent, strict=True):
        ids = retrieved.get(candidate.text, set())
        others = [other for text, other in retrieved.items() if text != candidate.text]
        rewards = rewrite_rewards(judgment.score, ids, scores, query_ids, others, accepted_ids)
        accepted, reason = judgment.accepted, judgment.reason
        if accepted and rewards.relevance < relevance_floor:
            accepted = False
            reason = f"relevance {rewards.relevance:.2f} is under the floor {relevance_floor:.2f}"
        scored.append((candidate, accepted, reason, rewards, weighted_reward(rewards, weights), len(ids)))
    scored.sort(key=lambda item: item[4], reverse=True)
    return [
        Rewrite(
            text=c.text,
            source=c.source,
            accepted=accepted,
            reason=reason,
            rewards=rewards,
            reward=reward,
            rank=rank,
            retrieved=count,
        )
        for rank, (c, accepted, reason, rewards, reward, count) in enumerate(scored, start=1)
    ]
