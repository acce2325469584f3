import json
from pathlib import Path

import pytest

from services.core.errors import ConfigError
from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.policy import AcceptancePolicy, KindRule, Mode
from services.judge.policy_file import SCHEMA, load_policy, policy_from_settings, save_policy

POLICY = AcceptancePolicy(
    {
        PairKind.QUERY_PRODUCT: KindRule(Mode.ALL, 0.7, {"embedding": 0.65, "cross_encoder": 0.5}),
        PairKind.QUERY_REWRITE: KindRule(Mode.ENSEMBLE, 0.75, {}, {"embedding": 1.0, "llm": 2.0}),
    },
    exact_at=0.85,
    partial_at=0.55,
)


def test_round_trip_keeps_the_policy_and_its_version(tmp_path: Path) -> None:
    path = tmp_path / "policies" / "judge.json"
    save_policy(POLICY, path, provenance={"labels": "labels.csv", "target_precision": 0.9})
    loaded = load_policy(path)
    assert loaded == POLICY
    assert loaded.describe() == POLICY.describe()
    document = json.loads(path.read_text())
    assert document["schema"] == SCHEMA and document["provenance"]["target_precision"] == 0.9
    assert [p.name for p in path.parent.iterdir()] == ["judge.json"]  # no temporary file left behind


def test_the_file_replaces_the_threshold_settings(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    save_policy(POLICY, path)
    settings = JudgeSettings(policy_file=path, product_threshold=0.1, policy="ensemble")
    assert policy_from_settings(settings) == POLICY


def good() -> dict:
    return {
        "schema": SCHEMA,
        "exact_at": 0.8,
        "partial_at": 0.6,
        "kinds": {
            "query_product": {"mode": "all", "threshold": 0.7},
            "query_rewrite": {"mode": "ensemble", "threshold": 0.75, "weights": {"llm": 2}},
        },
    }


def test_optional_fields_may_be_left_out(tmp_path: Path) -> None:
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(good()))
    policy = load_policy(path)
    assert policy.rules[PairKind.QUERY_PRODUCT].thresholds == {}
    assert policy.rules[PairKind.QUERY_REWRITE].weight_for("llm") == 2


def broken(change: str) -> object:
    document = good()
    if change == "schema":
        document["schema"] = "tailsynth.judge.policy/0"
    elif change == "threshold":
        document["kinds"]["query_product"]["threshold"] = 1.5
    elif change == "mode":
        document["kinds"]["query_product"]["mode"] = "majority"
    elif change == "kind":
        del document["kinds"]["query_rewrite"]
    elif change == "extra":
        document["kinds"]["query_product"]["treshold"] = 0.5
    elif change == "judge_threshold":
        document["kinds"]["query_product"]["thresholds"] = {"embedding": "high"}
    elif change == "grades":
        document["partial_at"] = 0.9
    elif change == "list":
        return [document]
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("schema", "schema"),
        ("threshold", "kinds.query_product.threshold"),
        ("mode", "kinds.query_product.mode"),
        ("kind", "kinds.query_rewrite"),
        ("extra", "treshold"),
        ("judge_threshold", "kinds.query_product.thresholds.embedding"),
        ("grades", "partial_at <= exact_at"),
        ("list", "top level"),
    ],
)
def test_bad_files_are_refused_naming_the_field(tmp_path: Path, change: str, message: str) -> None:
    path = tmp_path / "judge.json"
    path.write_text(json.dumps(broken(change)))
    with pytest.raises(ConfigError, match=message) as error:
        load_policy(path)
    assert str(path) in str(error.value)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_policy(tmp_path / "missing.json")
    path = tmp_path / "judge.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_policy(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_policy(path)
