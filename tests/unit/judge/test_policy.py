import pytest

from services.core.errors import ConfigError
from services.judge.config import JudgeSettings, parse_engine_map
from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, Label, Mode
from services.judge.policy_file import policy_from_settings

POLICY = policy_from_settings(JudgeSettings())
P, R = PairKind.QUERY_PRODUCT, PairKind.QUERY_REWRITE


def test_labels_are_graded_by_score() -> None:
    assert POLICY.decide(P, {"embedding": 0.85}).label is Label.EXACT
    assert POLICY.decide(P, {"embedding": 0.65}).label is Label.PARTIAL
    assert POLICY.decide(P, {"embedding": 0.2}).label is Label.IRRELEVANT


def test_each_kind_has_its_own_threshold_and_the_reason_says_why() -> None:
    product = POLICY.decide(P, {"embedding": 0.72})
    rewrite = POLICY.decide(R, {"embedding": 0.72})
    assert product.accepted and not rewrite.accepted
    assert product.reason == "relevance: embedding 0.72 >= threshold 0.70"
    assert rewrite.reason == "intent match: embedding 0.72 < threshold 0.75"


def test_one_judge_decides_alike_in_both_modes() -> None:
    ensemble = AcceptancePolicy.uniform(Mode.ENSEMBLE, 0.7, 0.75)
    for score in (0.1, 0.69, 0.7, 0.74, 0.75, 0.9):
        for kind in PairKind:
            a, b = POLICY.decide(kind, {"embedding": score}), ensemble.decide(kind, {"embedding": score})
            assert (a.accepted, a.label, a.score) == (b.accepted, b.label, b.score)


def test_all_mode_needs_every_judge_over_its_own_threshold_and_names_the_failing_one_first() -> None:
    policy = AcceptancePolicy.uniform(Mode.ALL, 0.7, 0.75, product_thresholds={"cross_encoder": 0.5})
    rejected = policy.decide(P, {"embedding": 0.82, "cross_encoder": 0.31})
    assert not rejected.accepted
    assert (
        rejected.reason == "relevance: cross_encoder 0.31 < threshold 0.50; embedding 0.82 >= threshold 0.70"
    )
    assert [(v.engine, v.threshold, v.passed) for v in rejected.engines] == [
        ("cross_encoder", 0.5, False),
        ("embedding", 0.7, True),
    ]
    accepted = policy.decide(P, {"embedding": 0.71, "cross_encoder": 0.51})
    assert accepted.accepted
    # the label comes from the combined score (mean), not from any one judge
    assert accepted.score == pytest.approx(0.61) and accepted.label is Label.PARTIAL
    # the per-judge threshold is for products only; rewrites use the kind's threshold
    assert policy.decide(R, {"cross_encoder": 0.6, "embedding": 0.9}).engines[0].threshold == 0.75


def test_ensemble_mode_weighs_scores_against_one_threshold() -> None:
    policy = AcceptancePolicy.uniform(Mode.ENSEMBLE, 0.7, 0.75, weights={"llm": 3})
    decision = policy.decide(P, {"embedding": 0.4, "llm": 0.9})
    assert decision.score == pytest.approx((0.4 + 3 * 0.9) / 4)
    assert decision.accepted  # embedding alone would reject it
    assert decision.reason == "relevance: ensemble 0.78 >= threshold 0.70 (embedding 0.40 x1, llm 0.90 x3)"
    assert not policy.decide(P, {"embedding": 0.1, "llm": 0.7}).accepted


def test_zero_weights_fall_back_to_the_plain_mean() -> None:
    policy = AcceptancePolicy.uniform(Mode.ENSEMBLE, 0.5, 0.5, weights={"a": 0, "b": 0})
    assert policy.decide(P, {"a": 0.2, "b": 0.6}).score == pytest.approx(0.4)


def test_settings_build_the_policy_and_its_description_is_part_of_the_version() -> None:
    settings = JudgeSettings(
        policy="ensemble",
        product_thresholds="embedding=0.6",
        weights="embedding=2,lexical=1",
    )
    policy = policy_from_settings(settings)
    assert policy.rules[P].mode is Mode.ENSEMBLE
    assert policy.rules[P].threshold_for("embedding") == 0.6
    assert policy.rules[P].weight_for("embedding") == 2
    assert policy.describe() != POLICY.describe()
    assert "embedding*2" in policy.describe() and "ensemble>=0.7" in policy.describe()


def test_the_default_description_is_stable() -> None:
    assert POLICY.describe() == "query_product:all>=0.7;query_rewrite:all>=0.75;exact>=0.8;partial>=0.6"


@pytest.mark.parametrize(
    "value", ["embedding", "embedding=x", "=0.5", "embedding=0.5,embedding=0.6", "embedding=-1"]
)
def test_bad_engine_maps_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="engine=number"):
        parse_engine_map(value, "weights")


def test_bad_threshold_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        JudgeSettings(product_thresholds="embedding=1.5")
    with pytest.raises(ValueError, match="policy"):
        JudgeSettings(policy="majority")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="redis://"):
        JudgeSettings(cache_url="localhost:6379")


def test_a_policy_naming_a_judge_that_does_not_run_is_refused() -> None:
    policy = AcceptancePolicy.uniform(Mode.ALL, 0.7, 0.75, product_thresholds={"cross_encoder": 0.5})
    policy.check_engines(["embedding", "cross_encoder"])
    with pytest.raises(ConfigError, match="cross_encoder"):
        policy.check_engines(["embedding"])


def test_no_scores_is_an_error_not_a_rejection() -> None:
    with pytest.raises(ValueError, match="no judge"):
        POLICY.decide(P, {})
