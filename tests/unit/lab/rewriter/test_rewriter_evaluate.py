"""The rewriter evaluation's measures on hand-made outcomes: shares over samples, rewards, union recall."""

from __future__ import annotations

import pytest

from services.lab.retriever.evaluate import LabelledQuery
from services.lab.rewriter.evaluate import QueryOutcome, query_seed, summarize, union_recall


def candidate(text: str, passed: bool, reward: float) -> dict[str, object]:
    return {
        "text": text, "source": "llm:hf", "intent_pass": passed, "accepted": passed, "reward": reward,
        "intent": reward, "relevance": reward, "increment": 0.5, "alignment": reward, "diversity": 1.0,
    }  # fmt: skip


OUTCOMES = [
    QueryOutcome(
        "deck over",
        [candidate("deck resurfacer", True, 0.6), candidate("over deck", False, 0.2)],
        [
            {"text": "deck over", "reason": "copy_of_query"},
            {"text": "deck resurfacer", "reason": "duplicate"},
        ],
        ["deck resurfacer"],
        [["P1", "P2"], ["P3", "P1"]],
    ),
    QueryOutcome("led shop light", [], [{"text": "<<>>", "reason": "not_text"}], [], [["L1", "L9"]]),
]


def test_shares_are_over_samples_and_a_duplicate_is_no_lost_sample() -> None:
    s = summarize(OUTCOMES)
    assert s["candidates"] == 2 and s["dropped"] == {"copy_of_query": 1, "duplicate": 1, "not_text": 1}
    assert s["dropped_share"] == pytest.approx(2 / 4)  # 2 candidates + 2 lost samples
    assert s["intent_pass_share"] == pytest.approx(1 / 4)
    assert s["intent_pass_of_candidates"] == pytest.approx(1 / 2)
    assert s["mean_reward"] == pytest.approx(0.4) and s["mean_reward_per_sample"] == pytest.approx(0.2)
    assert s["components"]["increment"] == pytest.approx(0.5)
    assert s["distinct_per_query"] == pytest.approx(1.0)


def test_union_recall_adds_what_the_rewrites_found() -> None:
    labelled = [
        LabelledQuery("deck over", {"P1": 1.0, "P3": 1.0}, frozenset({"P1", "P3"})),
        LabelledQuery("led shop light", {"L2": 1.0}, frozenset({"L2"})),
    ]
    r = union_recall(OUTCOMES, labelled, [1, 2])
    assert r["query"]["recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert r["union"]["recall@2"] == pytest.approx((2 / 2 + 0) / 2)
    assert r["union"]["recall@1"] == pytest.approx((2 / 2 + 0) / 2)  # P1 from the query, P3 from the rewrite
    assert r["increment"]["recall@2"] == pytest.approx(0.25)
    assert r["union"]["mean_rewrites"] == pytest.approx(0.5)


def test_the_sampling_seed_depends_only_on_the_normalised_query() -> None:
    assert query_seed("Deck  Over", 13) == query_seed("deck over", 13) != query_seed("deck over", 14)
