"""`synth eval judge`: how well each judge engine, and their combination, agrees with human labels.

Every engine scores every labelled query-product pair; the report gives ROC AUC, precision and recall
at the accepting threshold of the acceptance policy, the best precision at >= 50% recall, the best
recall at the target precision, and per label grade how often the judge accepts and agrees. The
ensemble is the policy's weighted mean against its threshold; `all` accepts a pair when every engine
reaches its own threshold (its curve ranks pairs by the smallest margin over a threshold).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import InvalidInput
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, PairKind
from services.judge.policy import KindRule
from services.judge.policy_file import policy_from_settings
from services.lab.labels import LabelSet
from services.lab.ranking import (
    at_threshold,
    finite_json,
    pr_curve,
    precision_at_recall,
    recall_at_precision,
    roc_auc,
)

log = logging.getLogger(__name__)

SCORE_CHUNK = 2048


@dataclass
class EngineScores:
    scores: np.ndarray
    seconds: float
    version: str


def score_engines(labels: LabelSet, settings: JudgeSettings, engines: list[str]) -> dict[str, EngineScores]:
    """Each engine's score for every pair, loading the engines one at a time."""
    from tqdm import tqdm

    pairs = [(p.query, p.text, PairKind.QUERY_PRODUCT) for p in labels.pairs]
    out: dict[str, EngineScores] = {}
    for name in engines:
        engine = ENGINES.get(name)(settings)
        if PairKind.QUERY_PRODUCT not in engine.kinds:
            raise InvalidInput(f"judge engine {name!r} does not judge query-product pairs")
        engine.load()
        began = time.monotonic()
        scores: list[float] = []
        for start in tqdm(range(0, len(pairs), SCORE_CHUNK), desc=name, unit="chunk", leave=False):
            scores.extend(engine.score(pairs[start : start + SCORE_CHUNK]))
        seconds = time.monotonic() - began
        out[name] = EngineScores(np.asarray(scores, dtype=np.float64), seconds, engine.version)
        engine.close()
    return out


def combined(rule: KindRule, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(weighted-mean score, margin score of mode `all`): accepting margin >= 0 is exactly `all`."""
    names = list(scores)
    weights = np.array([rule.weight_for(n) for n in names], dtype=np.float64)
    matrix = np.stack([scores[n] for n in names])
    mean = (
        (weights[:, None] * matrix).sum(axis=0) / weights.sum() if weights.sum() > 0 else matrix.mean(axis=0)
    )
    margins = matrix - np.array([rule.threshold_for(n) for n in names])[:, None]
    return mean, margins.min(axis=0)


def grade_key(label: str) -> tuple[float, str]:
    try:
        return float(label), label
    except ValueError:
        return float("inf"), label


def block(
    scores: np.ndarray,
    relevant: np.ndarray,
    grades: list[str],
    threshold: float,
    target_precision: float,
    seconds: float | None = None,
) -> dict[str, Any]:
    curve = pr_curve(scores, relevant)
    precision, recall, accepted = at_threshold(scores, relevant, threshold)
    best_precision, _ = precision_at_recall(curve, 0.5)
    best_recall, best_threshold = recall_at_precision(curve, target_precision)
    accepts = scores >= threshold
    per_grade: dict[str, dict[str, float]] = {}
    for grade in sorted(set(grades), key=grade_key):
        mask = np.array([g == grade for g in grades])
        agree = accepts[mask] == relevant[mask]
        per_grade[grade] = {
            "pairs": int(mask.sum()),
            "relevant": bool(relevant[mask].all()),
            "accepted_share": float(accepts[mask].mean()),
            "agreement": float(agree.mean()),
        }
    out: dict[str, Any] = {
        "auc": roc_auc(scores, relevant),
        "threshold": threshold,
        "precision": precision,
        "recall": recall,
        "accepted": accepted,
        "precision_at_recall_0.5": best_precision,
        "recall_at_target_precision": best_recall,
        "threshold_for_target_precision": best_threshold,
        "agreement": float((accepts == relevant).mean()),
        "per_grade": per_grade,
    }
    if seconds is not None:
        out["seconds"] = seconds
        out["pairs_per_s"] = len(scores) / seconds if seconds > 0 else float("nan")
    return out


@dataclass
class Report:
    data: dict[str, Any]
    json_path: Path
    plot_path: Path

    def table(self) -> str:
        target = self.data["target_precision"]
        rows = [
            f"| judge | AUC | precision @ accept | recall @ accept | precision @ recall>=0.5 "
            f"| recall @ precision>={target:g} | pairs/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, b in self.data["judges"].items():
            speed = f"{b['pairs_per_s']:.0f}" if "pairs_per_s" in b else "-"
            rows.append(
                f"| {name} | {_f(b['auc'])} | {_f(b['precision'])} | {_f(b['recall'])} "
                f"| {_f(b['precision_at_recall_0.5'])} | {_f(b['recall_at_target_precision'])} | {speed} |"
            )
        return "\n".join(rows)


def _f(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def evaluate(
    labels: LabelSet,
    settings: JudgeSettings,
    engines: list[str],
    out_dir: Path,
    policy_path: Path | None = None,
    target_precision: float = 0.85,
) -> Report:
    if not engines:
        raise InvalidInput("no judge engines to evaluate")
    if policy_path is not None:
        from services.judge.policy_file import load_policy

        policy = load_policy(policy_path)
    else:
        policy = policy_from_settings(settings)
    rule = policy.rules[PairKind.QUERY_PRODUCT]
    relevant = np.array([p.relevant for p in labels.pairs])
    grades = [p.label for p in labels.pairs]
    scored = score_engines(labels, settings, engines)
    judges: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, result in scored.items():
        judges[name] = block(
            result.scores, relevant, grades, rule.threshold_for(name), target_precision, result.seconds
        )
        curves[name] = (result.scores, np.array([rule.threshold_for(name)]))
    if len(scored) > 1:
        mean, margin = combined(rule, {n: r.scores for n, r in scored.items()})
        judges["ensemble"] = block(mean, relevant, grades, rule.threshold, target_precision)
        judges["all"] = block(margin, relevant, grades, 0.0, target_precision)
        judges["all"]["note"] = "scores are the smallest margin over each engine's threshold"
        curves["ensemble"] = (mean, np.array([rule.threshold]))
        curves["all"] = (margin, np.array([0.0]))
    data = {
        "labels": {
            **labels.provenance(),
            "relevant": int(relevant.sum()),
            "queries": len({p.query for p in labels.pairs}),
        },
        "policy": {"mode": rule.mode.value, "rule": rule.describe()},
        "accepting": "ensemble" if rule.mode.value == "ensemble" else "all",
        "target_precision": target_precision,
        "judges": judges,
        "versions": {name: result.version for name, result in scored.items()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "judge-eval.json"
    json_path.write_text(json.dumps(finite_json(data), indent=2) + "\n")
    plot_path = out_dir / "judge-eval-pr.png"
    plot_pr(curves, relevant, target_precision, plot_path, f"{labels.path.name}: {len(relevant)} pairs")
    return Report(data, json_path, plot_path)


def plot_pr(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    relevant: np.ndarray,
    target_precision: float,
    path: Path,
    title: str,
) -> None:
    from services.lab.plots import new_figure, save_figure

    figure, axes = new_figure()
    for name, (scores, thresholds) in curves.items():
        curve = pr_curve(scores, relevant)
        (line,) = axes.plot(
            curve.recall, curve.precision, label=f"{name} (AUC {roc_auc(scores, relevant):.3f})"
        )
        precision, recall, _ = at_threshold(scores, relevant, float(thresholds[0]))
        if not math.isnan(precision):
            axes.plot([recall], [precision], "o", color=line.get_color())
    axes.axhline(target_precision, color="grey", linestyle="--", linewidth=0.8)
    axes.axvline(0.5, color="grey", linestyle=":", linewidth=0.8)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(max(0.0, float(relevant.mean()) - 0.1), 1.0)
    axes.set_title(f"{title} (dots: accepting threshold)")
    axes.legend(loc="lower left")
    save_figure(figure, path)
