"""The embedding judge keeps recent texts' embeddings: same scores, only new texts encoded, bounded size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.judge.config import JudgeSettings
from services.judge.engines.embedding import EmbeddingJudge

PAIRS = [
    ("cordless drill", "20V MAX cordless drill driver kit", "product"),
    ("cordless drill", "Oak bathroom vanity with sink", "product"),
    ("bath mat", "Memory foam bath mat, non slip", "product"),
]


def judge(tmp_path: Path, cache_size: int) -> EmbeddingJudge:
    settings = JudgeSettings(state_dir=tmp_path, encoder_backend="torch", embedding_cache_size=cache_size)
    engine = EmbeddingJudge(settings)
    engine.load()
    return engine


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts of every encode call, in order."""
    from services.core.encoder import Encoder

    calls: list[list[str]] = []
    original = Encoder.encode

    def recording(self: Encoder, texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return original(self, texts)

    monkeypatch.setattr(Encoder, "encode", recording)
    return calls


def test_kept_embeddings_give_the_same_scores_and_only_new_texts_are_encoded(
    tmp_path: Path, encoded: list[list[str]]
) -> None:
    uncached = judge(tmp_path, cache_size=0)
    cached = judge(tmp_path, cache_size=100)
    expected = uncached.score(PAIRS)
    assert cached.score(PAIRS) == pytest.approx(expected, abs=1e-5)
    encoded.clear()
    again = [*PAIRS[:2], ("bath mat", "Teak shower bench", "product")]
    assert cached.score(again)[:2] == pytest.approx(expected[:2], abs=1e-5)
    assert encoded == [["Teak shower bench"]]
    encoded.clear()
    uncached.score(PAIRS)
    assert sorted(encoded[0]) == sorted({t for q, p, _ in PAIRS for t in (q, p)})  # size 0: nothing kept


def test_the_least_recently_used_texts_leave_first(tmp_path: Path, encoded: list[list[str]]) -> None:
    engine = judge(tmp_path, cache_size=3)
    engine.embed({"a", "b", "c"})
    engine.embed({"a"})  # a is now the most recently used
    engine.embed({"d"})
    assert list(engine.embeddings) == ["c", "a", "d"]
    encoded.clear()
    engine.embed({"a", "b"})
    assert encoded == [["b"]]
    assert len(engine.embeddings) == 3
