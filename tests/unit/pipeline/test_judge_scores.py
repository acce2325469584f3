"""The judge client's translation of a Judgment and the pair the pipeline builds from it."""

from services.gen.synth.v1 import judge_pb2
from services.pipeline.clients import _judgment
from services.pipeline.domain import Hit
from services.pipeline.synthesize import _Found, _pair


def test_pairs_carry_each_judges_score_next_to_the_combined_one() -> None:
    judgment = _judgment(
        judge_pb2.Judgment(
            score=0.61,
            label=judge_pb2.RELEVANCE_LABEL_PARTIAL,
            accepted=False,
            reason="relevance: cross_encoder 0.31 < threshold 0.50; embedding 0.91 >= threshold 0.70",
            engine_scores=[
                judge_pb2.EngineScore(engine="cross_encoder", score=0.31, threshold=0.5, passed=False),
                judge_pb2.EngineScore(engine="embedding", score=0.91, threshold=0.7, passed=True),
            ],
        )
    )
    assert judgment.engine_scores == {"cross_encoder": 0.31, "embedding": 0.91}
    assert judgment.label == "partial"
    found = _Found(Hit("P1", "Drill", "Drill", 0.8), ["drill"], True)
    pair = _pair("drill", found, judgment)
    assert pair.judges == {"cross_encoder": 0.31, "embedding": 0.91}
    assert pair.score == 0.61 and pair.label == "partial" and not pair.accepted
    assert pair.model_dump()["judges"]["cross_encoder"] == 0.31


def test_an_unknown_label_reads_as_irrelevant() -> None:
    assert _judgment(judge_pb2.Judgment(score=0.9, label=99, accepted=True)).label == "irrelevant"  # type: ignore[arg-type]
