"""The llm judge on SmolLM2-135M with the hf backend: real label log-probabilities, no generated text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from services.core.llm.labels import label_token_ids
from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.engines.llm import LLMJudge
from tests.integration.judge_llm_pairs import PRODUCT_PAIRS, REWRITE_PAIRS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judge(rewriter_model_dir: Path) -> Iterator[LLMJudge]:
    engine = LLMJudge(JudgeSettings(engines="llm", llm_model_dir=rewriter_model_dir, llm_batch_size=16))
    engine.load()

    def no_generation(*args: object, **kwargs: object) -> None:
        raise AssertionError("the llm judge must read label log-probabilities, not generate text")

    engine.runtime.model.generate = no_generation
    yield engine
    engine.close()


def _separates(judge: LLMJudge, triples: list[tuple[str, str, str]], kind: PairKind) -> tuple[float, int]:
    good = judge.score([(q, a, kind) for q, a, _ in triples])
    bad = judge.score([(q, b, kind) for q, _, b in triples])
    assert all(0.0 <= s <= 1.0 for s in good + bad)
    return float(np.mean(good) - np.mean(bad)), sum(g > b for g, b in zip(good, bad, strict=True))


def test_relevant_products_score_above_irrelevant_ones(judge: LLMJudge) -> None:
    gap, wins = _separates(judge, PRODUCT_PAIRS, PairKind.QUERY_PRODUCT)
    assert gap > 0.0 and wins >= 6, (gap, wins)


def test_rewrites_that_keep_the_intent_score_above_unrelated_ones(judge: LLMJudge) -> None:
    gap, wins = _separates(judge, REWRITE_PAIRS, PairKind.QUERY_REWRITE)
    assert gap > 0.0 and wins >= 6, (gap, wins)


def test_one_padded_batch_scores_like_each_prompt_alone(judge: LLMJudge) -> None:
    pairs = [(q, a, PairKind.QUERY_PRODUCT) for q, a, _ in PRODUCT_PAIRS]
    pairs += [(q, b, PairKind.QUERY_REWRITE) for q, _, b in REWRITE_PAIRS]
    batched = judge.distributions(pairs)
    alone = [judge.distributions([pair])[0] for pair in pairs[::3]]
    for together, by_itself in zip(batched[::3], alone, strict=True):
        np.testing.assert_allclose(together, by_itself, atol=1e-4)
    assert [len(d) for d in batched] == [3] * len(PRODUCT_PAIRS) + [2] * len(REWRITE_PAIRS)
    assert all(abs(d.sum() - 1) < 1e-9 for d in batched)


def test_labels_are_checked_against_the_real_tokenizer(judge: LLMJudge) -> None:
    tokenizer = judge.runtime.tokenizer
    assert len(set(label_token_ids(tokenizer, [" no", " partly", " yes"], "probe"))) == 3
    with pytest.raises(ConfigError, match="' 1' is 2 tokens"):
        label_token_ids(tokenizer, [" 1", " 2", " 3", " 4"], "probe")
    assert judge.version.startswith("llm:hf:smollm2-135m-instruct")
