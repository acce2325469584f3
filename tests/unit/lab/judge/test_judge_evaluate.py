"""Judge metrics on hand-computed examples, and the evaluation report (JSON + PNG) on real engines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from services.judge.config import JudgeSettings
from services.lab.judge.evaluate import evaluate
from services.lab.labels import load_labels
from services.lab.ranking import (
    at_threshold,
    finite_json,
    fit_platt,
    pr_curve,
    precision_at_recall,
    recall_at_precision,
    roc_auc,
)

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
RELEVANT = np.array([True, False, True, False, False])


def test_auc_counts_correctly_ordered_pairs_and_ties_count_half() -> None:
    # Relevant 0.9 beats 3 irrelevant, relevant 0.7 beats 2 of 3: 5 of 6 pairs.
    assert roc_auc(SCORES, RELEVANT) == pytest.approx(5 / 6)
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == pytest.approx(0.0)
    assert math.isnan(roc_auc(np.array([0.1, 0.9]), np.array([True, True])))


def test_pr_curve_and_operating_points() -> None:
    curve = pr_curve(SCORES, RELEVANT)
    assert curve.thresholds.tolist() == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert curve.precision == pytest.approx([1.0, 0.5, 2 / 3, 0.5, 0.4])
    assert curve.recall == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0])
    assert precision_at_recall(curve, 0.5) == (1.0, 0.9)
    assert precision_at_recall(curve, 1.0) == (pytest.approx(2 / 3), 0.7)
    assert recall_at_precision(curve, 0.6) == (1.0, 0.7)
    assert recall_at_precision(curve, 0.95) == (0.5, 0.9)
    assert at_threshold(SCORES, RELEVANT, 0.75) == (0.5, 0.5, 2)
    precision, recall, accepted = at_threshold(SCORES, RELEVANT, 0.95)
    assert math.isnan(precision) and recall == 0.0 and accepted == 0


def test_tied_scores_form_one_point_of_the_curve() -> None:
    curve = pr_curve(np.array([0.9, 0.9, 0.1]), np.array([True, False, True]))
    assert curve.thresholds.tolist() == [0.9, 0.1]
    assert curve.precision == pytest.approx([0.5, 2 / 3])
    assert curve.recall == pytest.approx([0.5, 1.0])


def test_platt_fit_recovers_a_known_calibration() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=20_000)
    relevant = rng.random(20_000) < 1 / (1 + np.exp(-(2.0 * logits - 1.0)))
    slope, intercept = fit_platt(logits, relevant)
    assert slope == pytest.approx(2.0, abs=0.1)
    assert intercept == pytest.approx(-1.0, abs=0.1)
    assert fit_platt(logits, np.ones(20_000, dtype=bool)) == (1.0, 0.0)


def test_undefined_metrics_are_null_in_json() -> None:
    assert json.dumps(finite_json({"a": float("nan"), "b": {"c": 1.5}})) == '{"a": null, "b": {"c": 1.5}}'


def labels_file(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(
        "query,product_title,median_relevance\n"
        "cordless drill,Cordless Drill 20V,4\n"  # lexical 1.0
        "cordless drill,Drill Bits Set,3\n"  # 0.5
        "cordless drill,Garden Hose,1\n"  # 0.0
        "garden hose,Garden Hose 50 ft,4\n"  # 1.0
        "garden hose,Hose Reel Cart,2\n"  # 0.5
        "garden hose,Cordless Drill 20V,1\n"  # 0.0
    )
    return path


def test_report_per_engine_per_grade_with_json_and_png(tmp_path: Path) -> None:
    labels = load_labels(labels_file(tmp_path))
    settings = JudgeSettings(state_dir=tmp_path, engines="lexical", product_threshold=0.5)
    report = evaluate(labels, settings, ["lexical"], tmp_path / "out")
    data = json.loads(report.json_path.read_text())
    lexical = data["judges"]["lexical"]
    # Accepting >= 0.5: drill 20V, bits (relevant), hose 50 ft, hose reel (not relevant: grade 2).
    assert lexical["precision"] == pytest.approx(3 / 4)
    assert lexical["recall"] == pytest.approx(1.0)
    assert lexical["accepted"] == 4
    assert lexical["per_grade"]["2"] == {
        "pairs": 1,
        "relevant": False,
        "accepted_share": 1.0,
        "agreement": 0.0,
    }
    assert lexical["per_grade"]["1"]["agreement"] == 1.0
    assert lexical["per_grade"]["4"]["accepted_share"] == 1.0
    assert data["labels"]["pairs"] == 6 and data["labels"]["relevant"] == 3
    assert data["versions"] == {"lexical": "lexical:1"}
    assert "ensemble" not in data["judges"]
    assert report.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| lexical |" in report.table()


@pytest.mark.slow
def test_two_engines_add_the_ensemble_and_all_modes(tmp_path: Path) -> None:
    labels = load_labels(labels_file(tmp_path))
    settings = JudgeSettings(
        state_dir=tmp_path,
        engines="embedding,lexical",
        product_threshold=0.6,
        product_thresholds="lexical=0.5",
        device="cpu",
    )
    report = evaluate(labels, settings, ["embedding", "lexical"], tmp_path / "out")
    judges = report.data["judges"]
    assert set(judges) == {"embedding", "lexical", "ensemble", "all"}
    assert judges["lexical"]["threshold"] == 0.5 and judges["embedding"]["threshold"] == 0.6
    assert judges["all"]["accepted"] <= min(judges["embedding"]["accepted"], judges["lexical"]["accepted"])
    assert 0.0 <= judges["ensemble"]["auc"] <= 1.0
    assert report.data["policy"]["mode"] == "all"
