"""Judge engines score pairs; the servicer depends only on this base class."""

from __future__ import annotations

from abc import abstractmethod
from enum import Enum

from services.core.engine import Engine
from services.core.registry import Registry
from services.judge.config import JudgeSettings


class PairKind(Enum):
    QUERY_PRODUCT = "query_product"
    QUERY_REWRITE = "query_rewrite"


class JudgeEngine(Engine[JudgeSettings]):
    @abstractmethod
    def score(self, pairs: list[tuple[str, str, PairKind]]) -> list[float]:
        """Calibrated relevance in [0, 1] for each (query, text, kind)."""


ENGINES: Registry[JudgeEngine] = Registry(
    "judge", {"embedding": "services.judge.engines.embedding:EmbeddingJudge"}
)
