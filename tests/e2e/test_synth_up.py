"""`synth up` as a user runs it: one command brings everything up, keeps it up when parts die, and
SIGTERM brings everything down.

The tests share one `synth up` and run in file order; the last one stops it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from services.core.redis_server import free_port

pytestmark = pytest.mark.slow

GRPC = ("rewriter", "retriever", "judge")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """True while the process exists, zombies included (os.kill(pid, 0) succeeds on a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class SynthUp:
    process: subprocess.Popen[str]
    state_dir: Path
    ports: dict[str, int]
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout_s: float, start: int = 0) -> re.Match[str]:
        """The first output line from `start` on matching `pattern`."""
        deadline = time.monotonic() + timeout_s
        seen = start
        while time.monotonic() < deadline:
            for line in self.lines[seen:]:
                if found := re.search(pattern, line):
                    return found
                seen += 1
            assert self.process.poll() is None, "".join(self.lines[-50:])
            time.sleep(0.1)
        raise AssertionError(
            f"no line matching {pattern!r} within {timeout_s:.0f}s:\n{''.join(self.lines[-30:])}"
        )

    def pid(self, name: str) -> int:
        """The current process id of a child, from the log."""
        pattern = re.compile(rf"(?:started {name} \(pid (\d+)\)|{name} restarted \(pid (\d+))")
        pids = [next(g for g in m.groups() if g) for line in self.lines if (m := pattern.search(line))]
        assert pids, f"no pid of {name} in the log"
        return int(pids[-1])

    def wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                if response.status_code == 200 and response.json()["status"] == "ready":
                    return response.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not ready within {timeout_s:.0f}s")


@pytest.fixture(scope="module")
def synth_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthUp]:
    ports = {name: free_port() for name in (*GRPC, "gateway")}
    state_dir = tmp_path_factory.mktemp("synth-up") / "state"
    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REDIS_URL"}
    env |= {f"TAILSYNTH_{name.upper()}_BIND": f"127.0.0.1:{ports[name]}" for name in GRPC}
    env |= {"TAILSYNTH_STATE_DIR": str(state_dir), "TAILSYNTH_GATEWAY_PORT": str(ports["gateway"])}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    up = SynthUp(process, state_dir, ports)
    threading.Thread(target=up.read_output, daemon=True).start()
    try:
        up.wait_for("Ctrl-C stops everything", 600)
        up.ports["redis"] = int(up.wait_for(r"Redis:\s+redis://127\.0\.0\.1:(\d+)", 5).group(1))
        yield up
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def stored_pair_ids(state_dir: Path) -> list[str]:
    return [
        pid
        for path in sorted((state_dir / "store").glob("pairs-*.parquet"))
        for pid in pq.read_table(path, columns=["pair_id"]).column("pair_id").to_pylist()
    ]


def test_synth_up_serves(synth_up: SynthUp) -> None:
    response = httpx.post(
        f"{synth_up.url}/v1/synthesize", json={"query": "baby bath thermometer"}, timeout=300
    )
    assert response.status_code == 200 and response.json()["pairs"]
    assert all(listening(port) for port in synth_up.ports.values())


def test_a_killed_redis_is_restarted_and_every_accepted_pair_is_stored_once(synth_up: SynthUp) -> None:
    queries = [
        "cordless drill for deck screws", "led flood light outdoor", "walnut coffee table", "porch light",
        "garden hose reel", "stainless kitchen sink", "ceiling fan with light", "patio umbrella base",
    ]  # fmt: skip

    def synthesize(query: str) -> httpx.Response:
        body = {"query": query, "num_rewrites": 2, "top_k": 10}
        return httpx.post(f"{synth_up.url}/v1/synthesize", json=body, timeout=300)

    victim = synth_up.pid("redis")
    mark = len(synth_up.lines)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(synthesize, query) for query in queries]
        futures[0].result()  # syntheses are under way: kill Redis in the middle of them
        os.kill(victim, signal.SIGKILL)
        responses = [future.result() for future in futures]

    synth_up.wait_for(r"redis was killed by SIGKILL; restarting it in", 30, mark)
    restarted = int(synth_up.wait_for(r"redis restarted \(pid (\d+)", 60, mark).group(1))
    assert restarted != victim and alive(restarted)
    assert not alive(victim), "the killed Redis was left a zombie"
    assert listening(synth_up.ports["redis"]), "Redis came back on another port"

    assert [r.status_code for r in responses] == [200] * len(queries), [r.text[:200] for r in responses]
    accepted = {p["pair_id"] for r in responses for p in r.json()["pairs"] if p["accepted"]}
    assert accepted, "no accepted pair; the test would prove nothing"
    deadline = time.monotonic() + 120
    while not accepted <= set(stored_pair_ids(synth_up.state_dir)):
        assert time.monotonic() < deadline, "accepted pairs never reached the Parquet store"
        time.sleep(0.5)
    stored = stored_pair_ids(synth_up.state_dir)
    assert len(stored) == len(set(stored)), "a pair was stored twice"
    health = synth_up.wait_ready(60)  # Redis reachable again and the spool replayed
    assert health["redis"] == {"reachable": True, "breaker": "closed"} and health["spool"]["batches"] == 0


def test_a_killed_grpc_service_is_restarted(synth_up: SynthUp) -> None:
    victim = synth_up.pid("judge")
    mark = len(synth_up.lines)
    os.kill(victim, signal.SIGKILL)
    synth_up.wait_for(r"judge was killed by SIGKILL; restarting it in 0\.5s", 30, mark)
    restarted = int(synth_up.wait_for(r"judge restarted \(pid (\d+)", 30, mark).group(1))
    assert restarted != victim and not alive(victim)
    synth_up.wait_ready(300)
    response = httpx.post(
        f"{synth_up.url}/v1/synthesize", json={"query": "judge came back", "use_cache": False}, timeout=300
    )
    assert response.status_code == 200, response.text


def test_sigterm_stops_every_process(synth_up: SynthUp) -> None:
    children = [synth_up.pid(name) for name in ("redis", *GRPC, "sink", "worker-0", "gateway")]
    synth_up.process.send_signal(signal.SIGTERM)
    assert synth_up.process.wait(60) == 0, "".join(synth_up.lines[-30:])
    assert not any(listening(port) for port in synth_up.ports.values())
    assert not any(alive(pid) for pid in children)
    assert (synth_up.state_dir / "redis" / "appendonlydir").is_dir()  # Redis data lives under the state dir
