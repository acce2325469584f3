"""Thresholds from labelled data: highest recall at the target precision, written as a policy file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.core.errors import InvalidInput
from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.policy import Mode
from services.judge.policy_file import load_policy
from services.lab.judge.calibrate import calibrate, choose_threshold
from services.lab.labels import load_labels


def test_choose_threshold_takes_the_highest_recall_that_keeps_the_precision() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    relevant = np.array([True, False, True, False, False])
    choice = choose_threshold(scores, relevant, 0.6)
    assert (choice.threshold, choice.recall, choice.reached) == (0.7, 1.0, True)
    assert choice.precision == pytest.approx(2 / 3)
    strict = choose_threshold(scores, relevant, 0.9)
    assert (strict.threshold, strict.recall) == (0.9, 0.5)
    out_of_reach = choose_threshold(np.array([0.9, 0.1]), np.array([False, True]), 0.9)
    assert not out_of_reach.reached and out_of_reach.threshold == 1.0


def labels(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text("query,product_title,median_relevance\n" + rows)
    return path


ROWS = (
    "cordless drill,Cordless Drill 20V,4\n"  # lexical 1.0
    "cordless drill,Drill Bits Set,3\n"  # 0.5
    "cordless drill,Garden Hose,1\n"  # 0.0
    "garden hose,Garden Hose 50 ft,4\n"  # 1.0
    "garden hose,Hose Reel Cart,2\n"  # 0.5
    "garden hose,Garden Gloves,1\n"  # 0.5
)


def test_calibrate_writes_a_policy_the_judge_loads(tmp_path: Path) -> None:
    settings = JudgeSettings(state_dir=tmp_path, engines="lexical", rewrite_threshold=0.8)
    out = tmp_path / "policy.json"
    result = calibrate(load_labels(labels(tmp_path, ROWS)), settings, ["lexical"], 0.9, "ensemble", out)
    # At 0.5 precision is 3/5; only the 1.0 scores (both relevant) reach 0.9.
    assert result.choices["lexical"].threshold == 1.0
    assert result.choices["lexical"].recall == pytest.approx(2 / 3)
    policy = load_policy(out)
    rule = policy.rules[PairKind.QUERY_PRODUCT]
    assert rule.mode is Mode.ENSEMBLE and rule.threshold == 1.0
    assert rule.threshold_for("lexical") == 1.0
    assert policy.rules[PairKind.QUERY_REWRITE].threshold == 0.8  # untouched by query-product labels
    provenance = json.loads(out.read_text())["provenance"]
    assert provenance["target_precision"] == 0.9
    assert provenance["measured"]["recall"] == pytest.approx(2 / 3)
    assert "policy as written: precision 1.000, recall 0.667" in result.summary()

    loose = calibrate(load_labels(labels(tmp_path, ROWS)), settings, ["lexical"], 0.6, "all", out)
    assert loose.choices["lexical"].threshold == 0.5 and loose.choices["lexical"].recall == 1.0
    assert load_policy(out).rules[PairKind.QUERY_PRODUCT].mode is Mode.ALL


def test_calibration_needs_both_classes_and_a_sane_target(tmp_path: Path) -> None:
    settings = JudgeSettings(state_dir=tmp_path, engines="lexical")
    only_relevant = load_labels(labels(tmp_path, "lamp,Desk Lamp,4\nlamp,Floor Lamp,3\n"))
    with pytest.raises(InvalidInput, match="both relevant and irrelevant"):
        calibrate(only_relevant, settings, ["lexical"], 0.9, "ensemble", tmp_path / "p.json")
    with pytest.raises(InvalidInput, match="target-precision"):
        calibrate(only_relevant, settings, ["lexical"], 1.5, "ensemble", tmp_path / "p.json")
