"""Acceptance policy: the judges' scores for a pair become one score, a graded label, a decision and a reason.

Per pair kind, one of two modes:
- all: every judge that scored the pair must reach its own threshold;
- ensemble: the weighted mean of the judges' scores must reach the kind's threshold.
The combined score (weighted mean, in both modes) grades the label. With one judge both modes are the
single-threshold policy the service always had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from services.core.errors import ConfigError
from services.judge.engine import PairKind


class Label(Enum):
    IRRELEVANT = "irrelevant"
    PARTIAL = "partial"
    EXACT = "exact"


class Mode(Enum):
    ALL = "all"
    ENSEMBLE = "ensemble"


@dataclass(frozen=True, slots=True)
class EngineVerdict:
    engine: str
    score: float
    threshold: float
    passed: bool  # score >= the judge's own threshold (informational in ensemble mode)


@dataclass(frozen=True, slots=True)
class Decision:
    score: float  # combined score
    label: Label
    accepted: bool
    reason: str
    engines: tuple[EngineVerdict, ...] = ()


@dataclass(frozen=True)
class KindRule:
    mode: Mode
    threshold: float  # the ensemble's threshold, and each judge's unless `thresholds` names it
    thresholds: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)  # judges not named weigh 1

    def threshold_for(self, engine: str) -> float:
        return self.thresholds.get(engine, self.threshold)

    def weight_for(self, engine: str) -> float:
        return self.weights.get(engine, 1.0)

    def combine(self, scores: Mapping[str, float]) -> float:
        """Weighted mean; plain mean if every weight present is 0."""
        total = sum(self.weight_for(e) for e in scores)
        if total <= 0:
            return sum(scores.values()) / len(scores)
        return sum(self.weight_for(e) * s for e, s in scores.items()) / total

    def describe(self) -> str:
        parts = [f"{self.mode.value}>={self.threshold:g}"]
        parts += [f"{e}>={t:g}" for e, t in sorted(self.thresholds.items())]
        parts += [f"{e}*{w:g}" for e, w in sorted(self.weights.items())]
        return ",".join(parts)


WHAT = {PairKind.QUERY_PRODUCT: "relevance", PairKind.QUERY_REWRITE: "intent match"}


def _cmp(score: float, threshold: float) -> str:
    return f"{score:.2f} {'>=' if score >= threshold else '<'} threshold {threshold:.2f}"


@dataclass(frozen=True)
class AcceptancePolicy:
    rules: Mapping[PairKind, KindRule]
    exact_at: float = 0.8
    partial_at: float = 0.6

    def __post_init__(self) -> None:
        missing = [kind.value for kind in PairKind if kind not in self.rules]
        if missing:
            raise ConfigError(f"acceptance policy has no rule for {', '.join(missing)}")
        if not 0 <= self.partial_at <= self.exact_at <= 1:
            raise ConfigError("acceptance policy needs 0 <= partial_at <= exact_at <= 1")

    @classmethod
    def uniform(
        cls,
        mode: Mode,
        product_threshold: float,
        rewrite_threshold: float,
        *,
        product_thresholds: Mapping[str, float] | None = None,
        rewrite_thresholds: Mapping[str, float] | None = None,
        weights: Mapping[str, float] | None = None,
        exact_at: float = 0.8,
        partial_at: float = 0.6,
    ) -> AcceptancePolicy:
        """One mode and one set of weights for both kinds."""
        w = dict(weights or {})
        return cls(
            {
                PairKind.QUERY_PRODUCT: KindRule(mode, product_threshold, dict(product_thresholds or {}), w),
                PairKind.QUERY_REWRITE: KindRule(mode, rewrite_threshold, dict(rewrite_thresholds or {}), w),
            },
            exact_at,
            partial_at,
        )

    def label(self, score: float) -> Label:
        if score >= self.exact_at:
            return Label.EXACT
        return Label.PARTIAL if score >= self.partial_at else Label.IRRELEVANT

    def decide(self, kind: PairKind, scores: Mapping[str, float]) -> Decision:
        """Decision for one pair from the scores of the judges that scored it (judge name -> score)."""
        if not scores:
            raise ValueError(f"no judge scored this {kind.value} pair")
        rule = self.rules[kind]
        verdicts = tuple(
            EngineVerdict(e, s, rule.threshold_for(e), s >= rule.threshold_for(e))
            for e, s in sorted(scores.items())
        )
        combined = rule.combine(scores)
        if rule.mode is Mode.ALL:
            accepted = all(v.passed for v in verdicts)
            # failing judges first: the reason a pair was dropped is what people read
            ordered = sorted(verdicts, key=lambda v: v.passed)
            detail = "; ".join(f"{v.engine} {_cmp(v.score, v.threshold)}" for v in ordered)
        else:
            accepted = combined >= rule.threshold
            weights = ", ".join(f"{v.engine} {v.score:.2f} x{rule.weight_for(v.engine):g}" for v in verdicts)
            detail = f"ensemble {_cmp(combined, rule.threshold)} ({weights})"
        return Decision(combined, self.label(combined), accepted, f"{WHAT[kind]}: {detail}", verdicts)

    def engines_named(self) -> set[str]:
        return {e for rule in self.rules.values() for e in (*rule.thresholds, *rule.weights)}

    def check_engines(self, engines: Iterable[str]) -> None:
        """Refuse a policy that sets thresholds or weights for judges this service does not run."""
        names = list(engines)
        unknown = self.engines_named() - set(names)
        if unknown:
            raise ConfigError(
                f"the acceptance policy names judge(s) {', '.join(sorted(unknown))} that "
                f"TAILSYNTH_JUDGE_ENGINES does not run ({', '.join(names)})"
            )

    def describe(self) -> str:
        rules = ";".join(f"{kind.value}:{self.rules[kind].describe()}" for kind in PairKind)
        return f"{rules};exact>={self.exact_at:g};partial>={self.partial_at:g}"
