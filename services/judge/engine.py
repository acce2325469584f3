"""Judge engines score pairs; the servicer depends only on this base class.

Each engine declares the pair kinds it judges (`kinds`); the service sends it only pairs of those
kinds, and the acceptance policy combines the scores of every engine that judged a pair.
"""

from __future__ import annotations

from abc import abstractmethod
from enum import Enum
from typing import Any, ClassVar

from services.core.engine import Engine
from services.core.errors import ConfigError
from services.core.registry import Registry
from services.judge.config import JudgeSettings


class PairKind(Enum):
    QUERY_PRODUCT = "query_product"
    QUERY_REWRITE = "query_rewrite"


Pair = tuple[str, str, PairKind]  # (query, text, kind)


class JudgeEngine(Engine[JudgeSettings]):
    kinds: ClassVar[frozenset[PairKind]] = frozenset(PairKind)
    # An engine that scores a pair in microseconds is neither batched across calls nor cached: the
    # batch wait and the Redis round trip would cost more than the scoring.
    cheap: ClassVar[bool] = False

    @abstractmethod
    def score(self, pairs: list[Pair]) -> list[float]:
        """Calibrated relevance in [0, 1] for each (query, text, kind); every kind is in self.kinds."""

    def close(self) -> None:
        """Release clients or devices (called once, after the server has drained)."""

    def provenance(self) -> dict[str, Any]:
        """What a trained engine was trained on (its manifest's data), {} for the others."""
        return {}


ENGINES: Registry[JudgeEngine] = Registry(
    "judge engine",
    {
        "cross_encoder": "services.judge.engines.cross_encoder:CrossEncoderJudge",
        "embedding": "services.judge.engines.embedding:EmbeddingJudge",
        "lexical": "services.judge.engines.lexical:LexicalJudge",
        "llm": "services.judge.engines.llm:LLMJudge",
    },
    extras={"cross_encoder": "judge", "embedding": "judge", "llm": "judge"},
)


def check_kinds(engines: list[JudgeEngine]) -> None:
    """Every pair kind must be judged by at least one engine."""
    for kind in PairKind:
        if not any(kind in engine.kinds for engine in engines):
            names = ",".join(engine.name for engine in engines)
            raise ConfigError(
                f"no judge engine in TAILSYNTH_JUDGE_ENGINES={names!r} judges {kind.value} pairs"
            )


def create_engines(settings: JudgeSettings) -> list[JudgeEngine]:
    """One instance of every configured engine."""
    return [ENGINES.get(name)(settings) for name in settings.engine_list]
