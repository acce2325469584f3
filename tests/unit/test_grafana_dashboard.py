"""The Grafana dashboard only queries metrics, and labels, that the code actually exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import services.core.metrics
import services.gateway.metrics
import services.judge.batching
import services.rewriter.engines.hf
import services.store.writer
import services.worker.consumer  # noqa: F401  (registers the worker metrics)

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "tailsynth.json"
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


def test_every_query_names_an_exported_metric_and_its_labels() -> None:
    exported = _exported()
    exprs = _exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        metrics = METRIC.findall(expr)
        assert metrics, expr
        allowed = {"le"}
        for metric in metrics:
            assert metric in exported, f"{metric} is not exported (in {expr})"
            allowed |= exported[metric]
        used = set()
        for group in re.findall(r"by \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")}
        used |= set(re.findall(r"[{,]\s*([a-z_]+)\s*[=!~]", expr))
        assert used <= allowed, f"{sorted(used - allowed)} not labels of {metrics} (in {expr})"


def test_the_dashboard_covers_what_operators_watch() -> None:
    text = " ".join(_exprs())
    for needed in [
        "tailsynth_gateway_stage_duration_seconds",
        'result="hit"',
        'outcome="accepted"',
        "tailsynth_gateway_backend_errors_total",
        "tailsynth_queue_entries",
        "tailsynth_gateway_rate_limited_total",
    ]:
        assert needed in text
