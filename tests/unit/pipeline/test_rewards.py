import pytest

from services.pipeline.rewards import rewrite_rewards


def test_rewards_follow_their_definitions() -> None:
    rewards = rewrite_rewards(
        relevance=0.9,
        retrieved={"a", "b", "c", "d"},
        query_retrieved={"a"},
        others_retrieved=[{"b"}, {"x"}],
        accepted={"a", "b", "c"},
        top_k=10,
    )
    assert rewards.relevance == 0.9
    assert rewards.increment == pytest.approx(2 / 10)  # b and c are new and accepted
    assert rewards.alignment == pytest.approx(3 / 4)
    assert rewards.diversity == pytest.approx(3 / 4)  # b is also another rewrite's


def test_a_rewrite_that_retrieves_nothing_earns_nothing_but_relevance() -> None:
    rewards = rewrite_rewards(0.8, set(), {"a"}, [], {"a"}, 10)
    assert (rewards.increment, rewards.alignment, rewards.diversity) == (0.0, 0.0, 0.0)
    assert rewards.relevance == 0.8
