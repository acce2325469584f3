"""LocalSystem's supervision of its children, with real (tiny) child processes."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.cli.system import MAX_RESTARTS, LocalSystem

SLEEPER = "import time; time.sleep(600)"


@pytest.fixture
def system(tmp_path: Path) -> Iterator[LocalSystem]:
    local = LocalSystem(state_dir=tmp_path, catalog=tmp_path / "catalog.csv", base_env=dict(os.environ))
    yield local
    local.stop(timeout_s=5)


def supervise_until(system: LocalSystem, done: Callable[[], bool], timeout_s: float = 10.0) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        reason = system.supervise_once()
        if reason or done():
            return reason
        time.sleep(0.05)
    raise AssertionError("supervision did not get there in time")


def test_a_killed_child_is_restarted_after_a_backoff_and_the_log_says_so(
    system: LocalSystem, caplog: pytest.LogCaptureFixture
) -> None:
    system._spawn("sleeper", "-c", SLEEPER)
    first = system.processes["sleeper"]
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    with caplog.at_level(logging.INFO, logger="services.cli.system"):
        reason = supervise_until(system, lambda: system.processes["sleeper"] is not first)
    assert reason is None
    assert time.monotonic() - killed_at >= 0.5  # the first backoff
    second = system.processes["sleeper"]
    assert second.poll() is None and second.pid != first.pid
    messages = [r.getMessage() for r in caplog.records]
    assert "sleeper was killed by SIGKILL; restarting it in 0.5s" in messages
    assert f"sleeper restarted (pid {second.pid}, restart 1)" in messages


def test_a_configuration_error_stops_everything_instead_of_a_restart(system: LocalSystem) -> None:
    system._spawn("misconfigured", "-c", "raise SystemExit(2)")
    reason = supervise_until(system, lambda: False)
    assert reason is not None and "misconfigured exited with code 2" in reason


def test_a_child_that_keeps_dying_is_given_up_on(system: LocalSystem) -> None:
    system._spawn("crasher", "-c", "raise SystemExit(1)")
    system.supervision["crasher"].restarts = MAX_RESTARTS  # as if it had died that often already
    reason = supervise_until(system, lambda: False)
    assert reason == f"crasher exited with code 1 after {MAX_RESTARTS} restarts in a row"


def test_a_child_stopped_on_purpose_stays_stopped(system: LocalSystem) -> None:
    system._spawn("sleeper", "-c", SLEEPER)
    assert system.stop_process("sleeper", signal.SIGKILL) == -signal.SIGKILL
    assert system.supervise_once() is None
    assert "sleeper" not in system.processes


def test_nothing_is_restarted_once_the_system_stops(system: LocalSystem) -> None:
    system._spawn("sleeper", "-c", SLEEPER)
    process = system.processes["sleeper"]
    system.stop(timeout_s=5)
    assert process.poll() is not None
    assert system.supervise_once() is None and not system.processes
