"""The pipeline's ranking of rewrites: rewards, weighted reward, rank, relevance floor (a pure function)."""

from __future__ import annotations

from services.pipeline.config import PipelineSettings
from services.pipeline.domain import Hit, Judgment, RewriteCandidate
from services.pipeline.models import Pair
from services.pipeline.rewards import rank_rewrites
from tests import results


def hit(pid: str) -> Hit:
    return Hit(product_id=pid, title=pid, text=pid, score=0.5)


def pair(pid: str, score: float) -> Pair:
    return results.pair(
        "q", pid, score, score >= 0.5, pair_id=pid, title=pid, label="exact", reason="", retrieved_by=[],
        found_by_query=False,
    )  # fmt: skip


def score(settings: PipelineSettings) -> list[tuple[str, int, bool, str, float]]:
    candidates = [RewriteCandidate(text=t, source="llm:hf") for t in ("weak", "strong", "off")]
    intent = [
        Judgment(score=0.6, label="partial", accepted=True, reason="keeps intent"),
        Judgment(score=0.9, label="exact", accepted=True, reason="keeps intent"),
        Judgment(score=0.1, label="irrelevant", accepted=False, reason="changes intent"),
    ]
    hits = {"weak": [hit("x1"), hit("x2")], "strong": [hit("q1"), hit("n1"), hit("n2")]}
    pairs = [pair("q1", 0.9), pair("n1", 0.8), pair("n2", 0.7), pair("x1", 0.1), pair("x2", 0.05)]
    rewrites = rank_rewrites(
        candidates, intent, hits, [hit("q1")], pairs, settings.weights, settings.relevance_floor
    )
    return [(r.text, r.rank, r.accepted, r.reason, r.reward) for r in rewrites]


def test_rewrites_are_ranked_by_reward_and_the_relevance_floor_rejects_with_a_reason() -> None:
    ranked = score(PipelineSettings(relevance_floor=0.4))
    assert [(text, rank) for text, rank, *_ in ranked] == [("strong", 1), ("weak", 2), ("off", 3)]
    assert [r[4] for r in ranked] == sorted((r[4] for r in ranked), reverse=True)
    by_text = {text: (accepted, reason) for text, _, accepted, reason, _ in ranked}
    assert by_text["strong"] == (True, "keeps intent")
    # weak: intent 0.6, its products 0.075 on average -> relevance 0.34 < 0.4
    assert by_text["weak"] == (False, "relevance 0.34 is under the floor 0.40")
    assert by_text["off"] == (False, "changes intent")  # the intent judge's reason is kept


def test_weights_change_the_ranking() -> None:
    default = [text for text, *_ in score(PipelineSettings())]
    diversity_only = score(PipelineSettings(reward_weights="diversity=1", relevance_floor=0))
    assert default[0] == "strong"
    assert {text for text, rank, *_ in diversity_only if rank <= 2} == {
        "strong",
        "weak",
    }  # both fully diverse
    assert diversity_only[-1][0] == "off" and diversity_only[-1][4] == 0.0
