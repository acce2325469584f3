"""Acceptance policy: a score becomes a graded label, a decision and a reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from services.judge.config import JudgeSettings
from services.judge.engine import PairKind


class Label(Enum):
    IRRELEVANT = "irrelevant"
    PARTIAL = "partial"
    EXACT = "exact"


@dataclass(frozen=True, slots=True)
class Decision:
    score: float
    label: Label
    accepted: bool
    reason: str


@dataclass(frozen=True)
class AcceptancePolicy:
    product_threshold: float
    rewrite_threshold: float
    exact_at: float
    partial_at: float

    @classmethod
    def from_settings(cls, settings: JudgeSettings) -> AcceptancePolicy:
        return cls(
            settings.product_threshold, settings.rewrite_threshold, settings.exact_at, settings.partial_at
        )

    def decide(self, kind: PairKind, score: float) -> Decision:
        label = (
            Label.EXACT
            if score >= self.exact_at
            else Label.PARTIAL
            if score >= self.partial_at
            else Label.IRRELEVANT
        )
        threshold = self.product_threshold if kind is PairKind.QUERY_PRODUCT else self.rewrite_threshold
        accepted = score >= threshold
        what = "relevance" if kind is PairKind.QUERY_PRODUCT else "intent match"
        reason = f"{what} {score:.2f} {'>=' if accepted else '<'} threshold {threshold:.2f}"
        return Decision(score, label, accepted, reason)

    def describe(self) -> str:
        return (
            f"product>={self.product_threshold},rewrite>={self.rewrite_threshold},"
            f"exact>={self.exact_at},partial>={self.partial_at}"
        )
