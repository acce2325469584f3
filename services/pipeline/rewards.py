"""Per-rewrite rewards from live retrieval and judgments (BEQUE-style), and their weighted sum."""

from __future__ import annotations

from dataclasses import dataclass

from services.pipeline.models import Rewards

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
