"""The dev overlay's containers, run here: same commands, args and environment, on loopback.

Renders deploy/k8s/overlays/dev, then starts every Deployment's containers as local processes in
dependency order (Redis, the retriever's index-build init container, the gRPC services, sink,
worker, gateway). Only what cannot be the same on one machine is mapped: Service host names and
ports become 127.0.0.1 and free ports, /var/lib/tailsynth and /app become local directories, and the
SmolLM2 weights converted once per test session are reused instead of converting them again. Each
container must pass its own readiness probe from the manifest, a queued query must flow through the
worker into the Parquet store, and every process must exit cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import redis

from services.core.health import is_serving
from services.core.redis_server import free_port, server_binary

pytestmark = pytest.mark.slow

if shutil.which("kubectl") is None:
    pytest.skip("kubectl is not on PATH: cannot render the dev overlay", allow_module_level=True)
yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["redis", "rewriter", "retriever", "judge", "sink", "worker", "gateway"]
Doc = dict[str, Any]


def render_dev() -> list[Doc]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / "dev")],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


class Cluster:
    """The rendered Deployments as local processes."""

    def __init__(self, docs: list[Doc], state: Path, model_dir: Path) -> None:
        self.deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
        self.config = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
        # Every Service port gets a free loopback port.
        self.services = {
            d["metadata"]["name"]: {p["port"]: free_port() for p in d["spec"]["ports"]}
            for d in docs
            if d["kind"] == "Service"
        }
        self.state = state
        self.model_dir = model_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports: dict[str, int] = {}

    def local(self, value: str) -> str:
        value = value.replace("/var/lib/tailsynth", str(self.state)).replace("/app/", f"{ROOT}/")
        for service, ports in self.services.items():
            for port, local in ports.items():
                value = value.replace(f"{service}:{port}", f"127.0.0.1:{local}")
        return value

    def env(self, name: str, container: Doc) -> dict[str, str]:
        env: dict[str, str] = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
        for source in container.get("envFrom", []):
            env.update(self.config[source["configMapRef"]["name"]])
        for item in container.get("env", []):
            if "valueFrom" in item:
                # As in a dev cluster without the Secret: an optional secret leaves the variable unset.
                optional = item["valueFrom"].get("secretKeyRef", {}).get("optional") is True
                assert optional, f"{name}: dev must not need Secrets ({item['name']})"
                continue
            env[item["name"]] = item["value"]
        env = {key: self.local(value) for key, value in env.items()}
        for key, value in list(env.items()):
            if key.endswith("_BIND") and value.startswith("0.0.0.0:"):
                env[key] = f"127.0.0.1:{self.services[name][int(value.rpartition(':')[2])]}"
            elif key.endswith("_METRICS_PORT") and value != "0":
                env[key] = str(self.metrics_ports.setdefault(name, free_port()))
        if name == "gateway":
            env["TAILSYNTH_GATEWAY_HOST"] = "127.0.0.1"
            env["TAILSYNTH_GATEWAY_PORT"] = str(self.services["gateway"][int(env["TAILSYNTH_GATEWAY_PORT"])])
        env["TAILSYNTH_REWRITER_MODEL_DIR"] = str(self.model_dir)
        env["TAILSYNTH_QUEUE_BLOCK_MS"] = env["TAILSYNTH_STORE_BLOCK_MS"] = "200"
        return env

    def command(self, container: Doc) -> list[str]:
        argv = [self.local(a) for a in container.get("command", []) + container.get("args", [])]
        if argv[0] == "python":
            return [sys.executable, *argv[1:]]
        if argv[0] == "synth":
            return [sys.executable, "-m", "services.cli.main", *argv[1:]]
        if argv[0] == "valkey-server":
            port = argv.index("--port") + 1
            argv[port] = str(self.services["redis"][int(argv[port])])
            (self.state / "redis").mkdir(parents=True, exist_ok=True)
            argv[argv.index("--dir") + 1] = str(self.state / "redis")
            return [str(server_binary()), *argv[1:], "--bind", "127.0.0.1"]
        raise AssertionError(f"unknown entry point {argv[0]}")

    def start(self, name: str) -> None:
        spec = self.deployments[name]["spec"]["template"]["spec"]
        for init in spec.get("initContainers", []):
            done = subprocess.run(self.command(init), env=self.env(name, init), cwd=ROOT, timeout=600)
            assert done.returncode == 0, f"{name}: init container {init['name']} failed"
        (container,) = [c for c in spec["containers"] if c["name"] == name]
        self.processes[name] = subprocess.Popen(
            self.command(container), env=self.env(name, container), cwd=ROOT, start_new_session=True
        )

    def ready(self, name: str) -> bool:
        """The container's own readinessProbe, pointed at its local ports."""
        container = next(
            c for c in self.deployments[name]["spec"]["template"]["spec"]["containers"] if c["name"] == name
        )
        probe = container["readinessProbe"]
        assert self.processes[name].poll() is None, f"{name} exited with {self.processes[name].returncode}"
        if "grpc" in probe:
            return is_serving(f"127.0.0.1:{self.services[name][probe['grpc']['port']]}")
        if "httpGet" in probe:
            port = self.services[name][8000]
            return (
                httpx.get(f"http://127.0.0.1:{port}{probe['httpGet']['path']}", timeout=3).status_code == 200
            )
        command = probe["exec"]["command"]
        if command[0] == "python":
            _, container_env = name, self.env(name, container)
            return (
                subprocess.run([sys.executable, *command[1:]], env=container_env, timeout=15).returncode == 0
            )
        return redis_pong(self.services["redis"][6379])  # valkey-cli is not installed here

    def wait_ready(self, name: str, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.ready(name):
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"{name} not ready after {timeout_s:.0f}s")

    def stop(self) -> dict[str, int]:
        codes: dict[str, int] = {}
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            grace = self.deployments[name]["spec"]["template"]["spec"].get(
                "terminationGracePeriodSeconds", 30
            )
            try:
                codes[name] = process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes


def redis_pong(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, rewriter_model_dir: Path) -> Iterator[Cluster]:
    local = Cluster(render_dev(), tmp_path_factory.mktemp("state"), rewriter_model_dir)
    assert set(ORDER) == set(local.deployments), "a Deployment this test does not know how to run"
    try:
        for name in ORDER:
            local.start(name)
            if name in {"redis", "judge", "gateway"}:  # let the gRPC services load side by side
                for started in list(local.processes):
                    local.wait_ready(started)
        yield local
    finally:
        local.stop()  # no-op when the last test already stopped everything


def test_every_container_passes_its_readiness_probe(cluster: Cluster) -> None:
    for name in ORDER:
        assert cluster.ready(name), name
    for name, port in cluster.metrics_ports.items():
        assert "tailsynth_" in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=3).text, name


def test_a_queued_query_flows_through_worker_and_sink(cluster: Cluster) -> None:
    gateway = f"http://127.0.0.1:{cluster.services['gateway'][8000]}"
    body = {"queries": [{"query": "cordless drill for deck screws", "num_rewrites": 2, "top_k": 10}]}
    response = httpx.post(f"{gateway}/v1/queue", json=body, timeout=10)
    assert response.status_code == 202, response.text
    (job_id,) = response.json()["ids"]
    client = redis.Redis(port=cluster.services["redis"][6379], decode_responses=True)
    deadline = time.monotonic() + 180
    done: dict[str, str] = {}
    while time.monotonic() < deadline and not done:
        done = next((f for _, f in client.xrange("tailsynth:queries:done") if f["job_id"] == job_id), {})
        time.sleep(0.5)
    assert done, "the worker did not finish the queued query"
    expected = set(json.loads(done["pair_ids"]))
    assert expected, "no accepted pair: nothing to check in the store"
    store = cluster.state / "store"
    stored: set[str] = set()
    while time.monotonic() < deadline and not expected <= stored:
        stored = {
            i for p in store.glob("pairs-*.parquet") for i in pq.read_table(p).column("pair_id").to_pylist()
        }
        time.sleep(0.5)
    assert expected <= stored


def test_every_process_exits_cleanly_on_sigterm(cluster: Cluster) -> None:
    codes = cluster.stop()
    cluster.processes.clear()
    # uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it caught, by design.
    assert codes.pop("gateway") in {0, -signal.SIGTERM}
    assert codes == dict.fromkeys([n for n in reversed(ORDER) if n != "gateway"], 0), codes
