import pytest

from services.pipeline.config import PipelineSettings
from services.pipeline.models import Rewards
from services.pipeline.rewards import RewardWeights, rewrite_rewards, weighted_reward


def test_rewards_follow_their_definitions() -> None:
    rewards = rewrite_rewards(
        intent=0.9,
        retrieved={"a", "b", "c", "d"},
        product_scores={"a": 0.8, "b": 0.6, "c": 0.4, "d": 0.2, "x": 1.0},
        query_retrieved={"a", "e"},
        others_retrieved=[{"b"}, {"x"}],
        accepted={"a", "b", "c", "e"},
    )
    assert rewards.intent == 0.9
    assert rewards.product_relevance == pytest.approx(0.5)  # mean over a..d; x is not its product
    assert rewards.relevance == pytest.approx((0.9 + 0.5) / 2)
    assert rewards.increment == pytest.approx(2 / 2)  # b, c new and accepted; the query had a, e
    assert rewards.alignment == pytest.approx(3 / 4)
    assert rewards.diversity == pytest.approx(3 / 4)  # b is also another rewrite's


def test_increment_is_relative_to_the_querys_own_relevant_products_and_can_exceed_one() -> None:
    rewards = rewrite_rewards(0.9, {"b", "c", "d"}, {}, {"a"}, [], {"a", "b", "c", "d"})
    assert rewards.increment == pytest.approx(3.0)
    lone = rewrite_rewards(0.9, {"b"}, {}, {"z"}, [], {"b"})  # the query found nothing relevant
    assert lone.increment == pytest.approx(1.0)


def test_a_rewrite_that_retrieves_nothing_earns_only_its_intent() -> None:
    rewards = rewrite_rewards(0.8, set(), {"a": 1.0}, {"a"}, [], {"a"})
    assert (rewards.increment, rewards.alignment, rewards.diversity, rewards.product_relevance) == (
        0,
        0,
        0,
        0,
    )
    assert rewards.relevance == 0.8


def test_weighted_reward_is_the_normalised_weighted_mean_with_a_bounded_increment() -> None:
    rewards = Rewards(
        intent=1, product_relevance=0.6, relevance=0.8, increment=3.0, alignment=0.5, diversity=0.25
    )
    weights = RewardWeights.parse("relevance=2,increment=1,alignment=1")
    assert weighted_reward(rewards, weights) == pytest.approx((2 * 0.8 + 0.75 + 0.5) / 4)
    only_diversity = RewardWeights.parse("diversity=1")
    assert weighted_reward(rewards, only_diversity) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "text",
    ["relevance", "relevance=x", "novelty=1", "relevance=-1", "relevance=0,increment=0", ""],
)
def test_bad_weights_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError):
        RewardWeights.parse(text)
    with pytest.raises(ValueError, match="reward_weights"):
        PipelineSettings(reward_weights=text)
