"""The Grafana dashboard and the Prometheus alert rules next to it only query metrics, and labels, that the
code actually exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import services.core.metrics
import services.gateway.metrics
import services.judge.batching
import services.rewriter.engines.hf
import services.store.writer
import services.worker.consumer  # noqa: F401  (registers the worker metrics)

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "tailsynth.json"
ALERTS = GRAFANA / "tailsynth-alerts.yaml"
DURATION = re.compile(r"^(\d+[smhd])+$")
METRIC = re.compile(r"\b(tailsynth_[a-z_]+)")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names, for every tailsynth metric in the registry."""
    labels: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        if family.name.startswith("tailsynth_"):
            names = set(getattr(REGISTRY._names_to_collectors.get(family.name), "_labelnames", ()))  # noqa: SLF001
            for suffix in ("", *SUFFIXES):
                labels[family.name + suffix] = names
    return labels


def _exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def _rules() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _check_expr(expr: str, exported: dict[str, set[str]]) -> None:
    metrics = METRIC.findall(expr)
    assert metrics, expr
    assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    allowed = {"le"}
    for metric in metrics:
        assert metric in exported, f"{metric} is not exported (in {expr})"
        allowed |= exported[metric]
    used = set()
    for group in re.findall(r"by \(([^)]*)\)", expr):
        used |= {label.strip() for label in group.split(",")}
    used |= set(re.findall(r"[{,]\s*([a-z_]+)\s*[=!~]", expr))
    assert used <= allowed, f"{sorted(used - allowed)} not labels of {metrics} (in {expr})"


def test_every_query_names_an_exported_metric_and_its_labels() -> None:
    exported = _exported()
    exprs = _exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        _check_expr(expr, exported)


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: str(rule["alert"]))
def test_every_alert_rule_is_complete_and_names_exported_metrics(rule: dict[str, object]) -> None:
    assert re.fullmatch(r"Tailsynth[A-Za-z]+", str(rule["alert"]))
    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, sorted(rule)
    _check_expr(str(rule["expr"]), _exported())
    assert DURATION.match(str(rule.get("for", "0s"))), rule.get("for")
    assert rule["labels"]["severity"] in {"warning", "critical"}  # type: ignore[index]
    assert {"summary", "description"} <= set(rule["annotations"])  # type: ignore[arg-type]
    for text in rule["annotations"].values():  # type: ignore[attr-defined]
        assert set(re.findall(r"\$labels\.([a-z_]+)", text)) <= set(
            re.findall(r"by \(([a-z_]+)\)", str(rule["expr"]))
        )


def test_the_alerts_cover_the_degraded_states() -> None:
    exprs = " ".join(str(rule["expr"]) for rule in _rules())
    for needed in [
        "tailsynth_gateway_redis_up",
        "tailsynth_gateway_redis_breaker_state",
        "tailsynth_gateway_spool_batches",
        "tailsynth_gateway_spool_oldest_age_seconds",
        "tailsynth_gateway_backend_up",
        "tailsynth_gateway_backend_state_changes_total",
    ]:
        assert needed in exprs


def test_the_dashboard_covers_what_operators_watch() -> None:
    text = " ".join(_exprs())
    for needed in [
        "tailsynth_gateway_stage_duration_seconds",
        'result="hit"',
        'outcome="accepted"',
        "tailsynth_gateway_backend_errors_total",
        "tailsynth_queue_entries",
        "tailsynth_gateway_rate_limited_total",
        "tailsynth_gateway_redis_up",
        "tailsynth_gateway_spool_batches",
        "tailsynth_gateway_backend_up",
    ]:
        assert needed in text
