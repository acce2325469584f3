"""Binary relevance metrics on judge scores, in numpy: ROC AUC, the precision-recall curve and the
operating points the issue asks for (precision at a recall floor, recall at a precision floor)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def roc_auc(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Probability that a random relevant pair outscores a random irrelevant one (ties count half):
    the Mann-Whitney U statistic over average ranks. NaN when one class is absent."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    positives = int(relevant.sum())
    negatives = len(relevant) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    start = 0
    while start < len(sorted_scores):
        end = start
        while end + 1 < len(sorted_scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    u = ranks[relevant].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


@dataclass(frozen=True)
class PrCurve:
    """One point per distinct score, highest threshold first: accept when score >= threshold."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def pr_curve(scores: np.ndarray, relevant: np.ndarray) -> PrCurve:
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], relevant[order]
    true_positives = np.cumsum(hits)
    accepted = np.arange(1, len(ranked) + 1)
    # Only the last index of each run of equal scores is a reachable threshold.
    last = np.r_[ranked[1:] != ranked[:-1], True] if len(ranked) else np.zeros(0, dtype=bool)
    total = max(int(relevant.sum()), 1)
    return PrCurve(ranked[last], (true_positives / accepted)[last], (true_positives / total)[last])


def at_threshold(scores: np.ndarray, relevant: np.ndarray, threshold: float) -> tuple[float, float, int]:
    """(precision, recall, accepted count) when accepting score >= threshold; precision is NaN when
    nothing is accepted."""
    accepted = np.asarray(scores) >= threshold
    relevant = np.asarray(relevant, dtype=bool)
    count = int(accepted.sum())
    true_positives = int((accepted & relevant).sum())
    precision = true_positives / count if count else float("nan")
    recall = true_positives / int(relevant.sum()) if relevant.any() else float("nan")
    return precision, recall, count


def precision_at_recall(curve: PrCurve, min_recall: float) -> tuple[float, float]:
    """(best precision, its threshold) among thresholds with recall >= min_recall."""
    ok = curve.recall >= min_recall
    if not ok.any():
        return float("nan"), float("nan")
    best = int(np.flatnonzero(ok)[np.argmax(curve.precision[ok])])
    return float(curve.precision[best]), float(curve.thresholds[best])


def recall_at_precision(curve: PrCurve, min_precision: float) -> tuple[float, float]:
    """(best recall, its threshold) among thresholds with precision >= min_precision; the highest
    such recall is reached at the lowest qualifying threshold."""
    ok = curve.precision >= min_precision
    if not ok.any():
        return 0.0, float("nan")
    best = int(np.flatnonzero(ok)[np.argmax(curve.recall[ok])])
    return float(curve.recall[best]), float(curve.thresholds[best])


def fit_platt(logits: np.ndarray, relevant: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(slope, intercept) so that sigmoid(slope * logit + intercept) estimates P(relevant), by Newton's
    method on the log loss with Platt's smoothed targets. (1, 0) when one class is absent."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(relevant, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return 1.0, 0.0
    target = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a * x + b)))
        w = np.maximum(p * (1 - p), 1e-12)
        g = np.array([np.sum((p - target) * x), np.sum(p - target)])
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-9:
            break
    return float(a), float(b)


def summary(scores: np.ndarray, relevant: np.ndarray, target_precision: float = 0.85) -> dict[str, float]:
    curve = pr_curve(scores, relevant)
    precision, precision_threshold = precision_at_recall(curve, 0.5)
    recall, recall_threshold = recall_at_precision(curve, target_precision)
    return {
        "auc": roc_auc(scores, relevant),
        "precision_at_recall_0.5": precision,
        "threshold_for_recall_0.5": precision_threshold,
        f"recall_at_precision_{target_precision:g}": recall,
        f"threshold_for_precision_{target_precision:g}": recall_threshold,
    }


def finite_json(value: Any) -> Any:
    """NaN (an undefined metric) as null, so reports and manifests are strict JSON."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
