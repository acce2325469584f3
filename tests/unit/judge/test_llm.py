"""LLM judge without a model: label-token check, label distribution, expected grade, calibration, prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from services.core.llm.labels import label_token_ids
from services.judge import prompts
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, PairKind
from services.judge.engines.llm import LLMJudge, expected_grade, label_distribution, platt
from services.judge.prompts import load_judge_prompt


class WordTokenizer:
    """Splits on spaces, a leading space kept with its word: " yes" is one token, " 1 2" two."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        pieces = [" " + w for w in text.split(" ") if w] if text.startswith(" ") else text.split(" ")
        return [self.vocab.setdefault(p, len(self.vocab)) for p in pieces if p]


def test_single_token_labels_give_their_ids() -> None:
    tokenizer = WordTokenizer()
    ids = label_token_ids(tokenizer, [" no", " yes"], "test")
    assert ids == tokenizer.encode(" no") + tokenizer.encode(" yes")
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([" no", " not at all"], "' not at all' is 3 tokens"),
        ([" yes", " yes"], "distinct"),
        ([" yes"], "at least two"),
        ([" no", ""], "'' is 0 tokens"),
    ],
)
def test_labels_that_are_not_single_distinct_tokens_fail_at_load(labels: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        label_token_ids(WordTokenizer(), labels, "judge prompt x")


def test_label_distribution_is_a_softmax_over_the_labels_only() -> None:
    # Full-vocabulary log-probabilities of two labels that hold 10% and 30% of the mass.
    logprobs = np.log(np.array([[0.1, 0.3], [0.02, 0.02]]))
    distribution = label_distribution(logprobs)
    np.testing.assert_allclose(distribution, [[0.25, 0.75], [0.5, 0.5]])
    # Logprobs already normalized over the labels (vLLM's processed logprobs) give the same distribution.
    np.testing.assert_allclose(label_distribution(np.log(distribution)), distribution)
    # Very unlikely labels do not underflow to 0/0.
    np.testing.assert_allclose(label_distribution(np.array([[-900.0, -901.0]])).sum(), 1.0)


def test_expected_grade_weights_each_label_by_its_grade() -> None:
    grades = (0.0, 1 / 3, 2 / 3, 1.0)
    distribution = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25], [0, 0.5, 0.5, 0]])
    np.testing.assert_allclose(expected_grade(distribution, grades), [0.0, 1.0, 0.5, 0.5])


def test_platt_is_monotone_and_centred_where_the_logit_is_zero() -> None:
    raw = np.linspace(0, 1, 11)
    calibrated = platt(raw, 6.0, -3.0)
    assert np.all(np.diff(calibrated) > 0)
    assert calibrated[5] == pytest.approx(0.5)
    assert 0 < calibrated.min() and calibrated.max() < 1


def test_shipped_prompts_load_with_graded_labels_and_hashed_versions() -> None:
    for name in ("product_v1", "rewrite_v1"):
        prompt = load_judge_prompt(name)
        assert prompt.version.startswith(f"{name}@") and len(prompt.version) == len(name) + 9
        assert len(prompt.labels) == len(prompt.grades) >= 2
        assert min(prompt.grades) == 0.0 and max(prompt.grades) == 1.0
        text = prompt.render("cordless drill", "DEWALT 20V drill")
        assert "cordless drill" in text and "DEWALT 20V drill" in text and text.endswith("Answer:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'name = "x"\ntemplate = "{query} {text} {oops}"\nlabels = [" a", " b"]\ngrades = [0, 1]',
            "malformed",
        ),
        (
            'name = "x"\ntemplate = "{query} {text}"\nlabels = [" a", " b"]\ngrades = [0]',
            "one grade per label",
        ),
        ('name = "x"\ntemplate = "{query} {text}"\nlabels = [" a", " b"]\ngrades = [0, 2]', r"\[0, 1\]"),
        ('name = "x"\ntemplate = "{query}"\nlabels = [" a", " b"]', "malformed"),
    ],
)
def test_malformed_prompts_are_config_errors(
    body: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.toml").write_text(body)
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    load_judge_prompt.cache_clear()
    try:
        with pytest.raises(ConfigError, match=message):
            load_judge_prompt("bad")
        with pytest.raises(ConfigError, match="available: bad"):
            load_judge_prompt("missing")
    finally:
        load_judge_prompt.cache_clear()


def test_registered_for_both_kinds_and_settings_validated() -> None:
    assert ENGINES.get("llm") is LLMJudge
    assert LLMJudge.kinds == frozenset({PairKind.QUERY_PRODUCT, PairKind.QUERY_REWRITE})
    with pytest.raises(ValueError, match="llm_backend"):
        JudgeSettings(llm_backend="onnx")
    with pytest.raises(ValueError, match="llm_product_slope"):
        JudgeSettings(llm_product_slope=-1.0)


def test_score_routes_each_kind_to_its_prompt_and_calibration() -> None:
    """Wiring only: a scorer that answers from the rendered prompt stands in for the model."""
    settings = JudgeSettings(
        engines="llm", llm_product_slope=4.0, llm_product_intercept=-2.0, llm_rewrite_slope=10.0
    )
    judge = LLMJudge(settings)
    judge.prompts = {
        kind: load_judge_prompt(name)
        for kind, name in [(PairKind.QUERY_PRODUCT, "product_v1"), (PairKind.QUERY_REWRITE, "rewrite_v1")]
    }
    judge.calibration = {PairKind.QUERY_PRODUCT: (4.0, -2.0), PairKind.QUERY_REWRITE: (10.0, -3.0)}
    judge.label_ids = {PairKind.QUERY_PRODUCT: [0, 1, 2], PairKind.QUERY_REWRITE: [3, 4]}
    seen: list[tuple[list[str], list[int]]] = []

    def scorer(texts: list[str], ids: list[int]) -> np.ndarray:
        seen.append((texts, ids))
        # Full-vocabulary probabilities: more mass on "yes" when the text mentions a drill.
        drill = {3: [0.1, 0.1, 0.3], 2: [0.1, 0.4]}[len(ids)]
        other = {3: [0.3, 0.1, 0.1], 2: [0.4, 0.1]}[len(ids)]
        return np.log([drill if "drill" in t.split("\n")[1] else other for t in texts])

    judge._scorer = scorer
    judge.runtime = object()
    pairs = [
        ("drill", "cordless drill", PairKind.QUERY_PRODUCT),
        ("drill", "drill bits", PairKind.QUERY_REWRITE),
        ("drill", "garden hose", PairKind.QUERY_PRODUCT),
    ]
    scores = judge.score(pairs)
    assert [ids for _, ids in seen] == [[0, 1, 2], [3, 4]]  # one batch per kind
    assert len(seen[0][0]) == 2 and "Product: cordless drill" in seen[0][0][0]
    assert "Rewritten query: drill bits" in seen[1][0][0]
    # product_v1 grades no/partly/yes as 0/0.5/1: (0.2, 0.2, 0.6) -> 0.7 and (0.6, 0.2, 0.2) -> 0.3
    assert scores[0] == pytest.approx(float(platt(np.array(0.7), 4.0, -2.0)))
    assert scores[1] == pytest.approx(float(platt(np.array(0.8), 10.0, -3.0)))
    assert scores[2] == pytest.approx(float(platt(np.array(0.3), 4.0, -2.0)))
    assert "product_v1@" in judge.version and "rewrite_v1@" in judge.version
