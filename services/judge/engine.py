"""Judge engines score pairs; the servicer depends only on this base class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum

from services.core.registry import Registry
from services.judge.config import JudgeSettings


class PairKind(Enum):
    QUERY_PRODUCT = "query_product"
    QUERY_REWRITE = "query_rewrite"


class JudgeEngine(ABC):
    name: str

    def __init__(self, settings: JudgeSettings) -> None:
        self.settings = settings

    @abstractmethod
    def load(self) -> None:
        """Load weights (blocking; runs in a worker thread)."""

    @property
    @abstractmethod
    def version(self) -> str:
        """Changes whenever scores could change (weights, calibration)."""

    @abstractmethod
    def score(self, pairs: list[tuple[str, str, PairKind]]) -> list[float]:
        """Calibrated relevance in [0, 1] for each (query, text, kind)."""


ENGINES: Registry[JudgeEngine] = Registry(
    "judge", {"embedding": "services.judge.engines.embedding:EmbeddingJudge"}
)
