"""`synth judge calibrate`: thresholds from labelled pairs for a target precision.

For each engine, and for the weighted-mean ensemble, the chosen threshold is the one with the highest
recall among those whose precision on the labelled pairs is at least the target. The query-product
rule of the policy file gets them (mode as asked); the query-rewrite rule and the grade cut-offs are
kept from the current policy, since query-product labels say nothing about rewrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import InvalidInput
from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, KindRule, Mode
from services.judge.policy_file import policy_from_settings
from services.lab.judge.evaluate import combined, score_engines
from services.lab.labels import LabelSet
from services.lab.ranking import at_threshold, finite_json, pr_curve, recall_at_precision


@dataclass(frozen=True)
class Choice:
    threshold: float
    precision: float
    recall: float
    reached: bool  # False: no threshold reaches the target; the threshold then accepts nothing


def choose_threshold(scores: np.ndarray, relevant: np.ndarray, target_precision: float) -> Choice:
    recall, threshold = recall_at_precision(pr_curve(scores, relevant), target_precision)
    if np.isnan(threshold):
        return Choice(1.0, float("nan"), 0.0, False)
    precision, recall, _ = at_threshold(scores, relevant, threshold)
    return Choice(float(threshold), precision, recall, True)


@dataclass
class Calibration:
    policy: AcceptancePolicy
    path: Path
    choices: dict[str, Choice]
    accepted: dict[str, float] = field(default_factory=dict)  # precision/recall of the written rule

    def summary(self) -> str:
        lines = [f"policy written to {self.path}"]
        for name, choice in self.choices.items():
            if choice.reached:
                lines.append(
                    f"  {name}: threshold {choice.threshold:.4f} "
                    f"(precision {choice.precision:.3f}, recall {choice.recall:.3f})"
                )
            else:
                lines.append(
                    f"  {name}: the target precision is out of reach; threshold 1.0 (accepts ~nothing)"
                )
        lines.append(
            f"  policy as written: precision {self.accepted['precision']:.3f}, "
            f"recall {self.accepted['recall']:.3f}"
        )
        return "\n".join(lines)


def calibrate(
    labels: LabelSet,
    settings: JudgeSettings,
    engines: list[str],
    target_precision: float,
    mode: str,
    out: Path,
) -> Calibration:
    if not 0 < target_precision <= 1:
        raise InvalidInput("--target-precision must be in (0, 1]")
    relevant = np.array([p.relevant for p in labels.pairs])
    if relevant.all() or not relevant.any():
        raise InvalidInput(f"{labels.path}: calibration needs both relevant and irrelevant pairs")
    current = policy_from_settings(settings)
    weights = dict(current.rules[PairKind.QUERY_PRODUCT].weights)
    scores = {name: result.scores for name, result in score_engines(labels, settings, engines).items()}
    choices = {name: choose_threshold(s, relevant, target_precision) for name, s in scores.items()}
    per_engine = {name: choice.threshold for name, choice in choices.items()}
    probe = KindRule(Mode(mode), 0.0, per_engine, {n: w for n, w in weights.items() if n in scores})
    mean, margin = combined(probe, scores)
    if len(scores) > 1:
        choices["ensemble"] = choose_threshold(mean, relevant, target_precision)
        ensemble_threshold = choices["ensemble"].threshold
    else:
        ensemble_threshold = next(iter(per_engine.values()))
    rule = KindRule(Mode(mode), ensemble_threshold, per_engine, probe.weights)
    policy = AcceptancePolicy(
        {PairKind.QUERY_PRODUCT: rule, PairKind.QUERY_REWRITE: current.rules[PairKind.QUERY_REWRITE]},
        current.exact_at,
        current.partial_at,
    )
    if mode == "ensemble":
        precision, recall, _ = at_threshold(mean, relevant, ensemble_threshold)
    else:
        precision, recall, _ = at_threshold(margin, relevant, 0.0)
    provenance: dict[str, Any] = {
        "written_by": "synth judge calibrate",
        "labels": labels.path.name,
        "labels_sha256": labels.sha256,
        "pairs": len(labels.pairs),
        "relevant_at": labels.scale.relevant_at,
        "target_precision": target_precision,
        "measured": {"precision": precision, "recall": recall},
        "unreached": sorted(n for n, c in choices.items() if not c.reached),
    }
    from services.judge.policy_file import save_policy

    save_policy(policy, out, finite_json(provenance))
    return Calibration(policy, out, choices, {"precision": precision, "recall": recall})
