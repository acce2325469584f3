import pytest

from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.engines.lexical import LexicalJudge, terms

P = PairKind.QUERY_PRODUCT


def test_terms_fold_case_and_plural_s_but_keep_short_words_and_double_s() -> None:
    assert terms("Cordless DRILLS, 20V bits") == {"cordless", "drill", "20v", "bit"}
    assert terms("glass gas") == {"glass", "gas"}


def test_the_score_is_the_share_of_query_terms_in_the_text() -> None:
    judge = LexicalJudge(JudgeSettings())
    judge.load()
    scores = judge.score(
        [
            ("cordless drill", "Voltra 20V Cordless Drill/Driver Kit", P),
            ("cordless drill", "battery drill", P),
            ("cordless drill", "velvet pillow", P),
            ("!!!", "anything", P),
        ]
    )
    assert scores == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert judge.version == "lexical:1" and judge.kinds == frozenset(PairKind)
