"""`synth up` as a user runs it: one command brings everything up, SIGTERM brings everything down."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.core.redis_server import free_port

pytestmark = pytest.mark.slow


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_synth_up_serves_then_stops_every_process_on_sigterm(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("rewriter", "retriever", "judge")}
    gateway = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REDIS_URL"}
    env |= {f"TAILSYNTH_{name.upper()}_BIND": f"127.0.0.1:{port}" for name, port in ports.items()}
    env |= {"TAILSYNTH_STATE_DIR": str(tmp_path / "state"), "TAILSYNTH_GATEWAY_PORT": str(gateway)}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 600
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line or process.poll() is None, "".join(output)
        output.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(output)
    redis_port = int(re.search(r"Redis:\s+redis://127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]

    response = httpx.post(
        f"http://127.0.0.1:{gateway}/v1/synthesize", json={"query": "baby bath thermometer"}, timeout=300
    )
    assert response.status_code == 200 and response.json()["pairs"]
    assert all(listening(p) for p in [*ports.values(), gateway, redis_port])

    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert not any(listening(p) for p in [*ports.values(), gateway, redis_port])
    assert (tmp_path / "state" / "redis" / "appendonlydir").is_dir()  # Redis data lives under the state dir
