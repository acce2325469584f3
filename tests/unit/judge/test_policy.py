from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, Label

POLICY = AcceptancePolicy(product_threshold=0.7, rewrite_threshold=0.75, exact_at=0.8, partial_at=0.6)


def test_labels_are_graded_by_score() -> None:
    assert POLICY.decide(PairKind.QUERY_PRODUCT, 0.85).label is Label.EXACT
    assert POLICY.decide(PairKind.QUERY_PRODUCT, 0.65).label is Label.PARTIAL
    assert POLICY.decide(PairKind.QUERY_PRODUCT, 0.2).label is Label.IRRELEVANT


def test_each_kind_has_its_own_threshold_and_the_reason_says_why() -> None:
    product = POLICY.decide(PairKind.QUERY_PRODUCT, 0.72)
    rewrite = POLICY.decide(PairKind.QUERY_REWRITE, 0.72)
    assert product.accepted and not rewrite.accepted
    assert "0.72 >= threshold 0.70" in product.reason
    assert "0.72 < threshold 0.75" in rewrite.reason
