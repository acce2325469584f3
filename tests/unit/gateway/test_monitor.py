"""Flap counting over a sliding window, and the degradation metrics it feeds."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.gateway.monitor import FlapCounter


def changes_metric(service: str) -> float:
    value = REGISTRY.get_sample_value("tailsynth_gateway_backend_state_changes_total", {"service": service})
    return value or 0.0


def test_state_changes_are_counted_within_the_window_only() -> None:
    now = [0.0]
    flaps = FlapCounter(window_s=60, clock=lambda: now[0])
    before = changes_metric("flappy")
    for serving in (True, True, False, True, False):  # the first observation is no change
        flaps.observe("flappy", serving)
        now[0] += 10
    assert flaps.changes("flappy") == 3
    assert changes_metric("flappy") - before == 3
    assert REGISTRY.get_sample_value("tailsynth_gateway_backend_up", {"service": "flappy"}) == 0
    now[0] += 35  # the first change (at t=20) is now 65 s old
    assert flaps.changes("flappy") == 2
    now[0] += 100
    assert flaps.changes("flappy") == 0 and flaps.changes("never-seen") == 0
