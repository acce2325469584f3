"""The gateway extra alone runs the gateway, a worker and the sink against the real services.

A virtual environment gets `pip install -e '.[gateway]'` and nothing else (once per test session). The
gRPC services (catalog rewriter, MiniLM retriever and embedding judge: real engines, no LLM, to keep the
run short) and Redis run from the test's own environment; the gateway, one queue worker and the Parquet
sink run from the gateway-only one. A synthesis over HTTP and a query through the queue must both put
their accepted pairs into the Parquet store, and every gateway-side process must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import redis

from services.cli.system import GRPC_SERVICES, LocalSystem, Ports
from services.core.health import wait_serving
from services.core.redis_server import EmbeddedRedis
from services.pipeline.ids import pair_id
from services.store.sink import stored_pair_ids

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO_CATALOG = ROOT / "data" / "demo" / "catalog.csv"
# What a serving image of the gateway must not carry.
HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "faiss",
    "onnxruntime",
    "onnx",
    "matplotlib",
    "numpy",
)
GATEWAY_SIDE = {"sink": "services.store", "worker": "services.worker", "gateway": "services.gateway"}


@pytest.fixture(scope="session")
def gateway_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding tailsynth with the gateway extra only."""
    venv = tmp_path_factory.mktemp("gateway-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[gateway]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return python


def test_the_gateway_venv_has_its_extra_and_no_model_library(gateway_python: Path) -> None:
    probe = (
        "import importlib, json\n"
        "from services.core.optional import missing\n"
        "found = []\n"
        f"for name in {list(HEAVY)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    found.append(name)\n"
        "print(json.dumps({'found': found, 'gateway': [l.module for l in missing('gateway')],\n"
        "                  'retriever': [l.module for l in missing('retriever')]}))\n"
    )
    done = subprocess.run([str(gateway_python), "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["found"] == [], f"the gateway extra installed {report['found']}"
    assert report["gateway"] == []
    assert {"torch", "faiss", "numpy"} <= set(report["retriever"])
    # A model role started there says what to install instead of failing with a traceback.
    refused = subprocess.run(
        [str(gateway_python), "-m", "services.retriever"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("pip install 'tailsynth[retriever]'"), refused.stderr


@dataclass
class Stack:
    system: LocalSystem
    keys: str
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def spawn(self, name: str, python: Path | str, module: str) -> None:
        with (self.logs / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                [str(python), "-m", module], env=self.system.env(), stdout=out, stderr=subprocess.STDOUT
            )

    def alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)}"

    def stop(self, name: str) -> int:
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        stack.alive()
        assert time.monotonic() < deadline, f"{what} within {timeout_s:.0f}s"
        time.sleep(0.3)


def small_catalog(path: Path) -> Path:
    """The demo catalog's drills and umbrellas and its first 50 rows: what the two queries need, indexed
    in seconds rather than minutes."""
    header, *rows = DEMO_CATALOG.read_text().splitlines(keepends=True)
    kept = [r for i, r in enumerate(rows) if i < 50 or any(w in r.lower() for w in ("drill", "umbrella"))]
    path.write_text(header + "".join(kept))
    return path


@pytest.fixture(scope="module")
def stack(
    gateway_python: Path, redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    keys = f"test-gateway-extra:{uuid.uuid4().hex[:8]}"
    state = tmp_path_factory.mktemp("state")
    system = LocalSystem(
        state_dir=state,
        catalog=small_catalog(state / "catalog.csv"),
        ports=Ports.free(),
        redis_url=redis_server.url,
        workers=0,
        base_env={k: v for k, v in os.environ.items() if not k.startswith("TAILSYNTH_")}
        | {
            "TAILSYNTH_REWRITER_ENGINES": "catalog",
            "TAILSYNTH_STORE_STREAM_KEY": f"{keys}:pairs",
            "TAILSYNTH_QUEUE_STREAM_KEY": f"{keys}:queries",
            "TAILSYNTH_STORE_BLOCK_MS": "200",
            "TAILSYNTH_QUEUE_BLOCK_MS": "200",
        },
    )
    stack = Stack(system, keys, tmp_path_factory.mktemp("logs"))
    try:
        system.ensure_index()
        for name in GRPC_SERVICES:  # from this environment, which has every extra
            stack.spawn(name, sys.executable, f"services.{name}")
        targets = [f"127.0.0.1:{getattr(system.ports, name)}" for name in GRPC_SERVICES]
        wait_serving(targets, 300, check=stack.alive, interval_s=0.5, what="the gRPC services")
        for name, module in GATEWAY_SIDE.items():
            stack.spawn(name, gateway_python, module)

        def ready() -> bool:
            try:
                return httpx.get(f"{system.gateway_url}/readyz", timeout=3).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "the gateway from the gateway-only venv is ready", stack)
        yield stack
    finally:
        for name in list(stack.processes):
            stack.stop(name)


def test_gateway_worker_and_sink_from_the_gateway_extra_serve_and_store(stack: Stack) -> None:
    url = stack.system.gateway_url
    store = stack.system.state_dir / "store"

    # A synthesis over HTTP, served by the gateway-only venv against the real services.
    response = httpx.post(
        f"{url}/v1/synthesize", json={"query": "cordless drill", "use_cache": False}, timeout=120
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert any(r["source"].startswith("catalog:") for r in result["rewrites"]), result["rewrites"]
    from_http = {p["pair_id"] for p in result["pairs"] if p["accepted"]}
    assert from_http and len(from_http) == result["accepted_count"]
    assert all(pair_id("cordless drill", p["product_id"]) == p["pair_id"] for p in result["pairs"])

    # A query through the queue, synthesized by the worker of that venv.
    queued = httpx.post(f"{url}/v1/queue", json={"queries": [{"query": "patio umbrella"}]}, timeout=30)
    assert queued.status_code == 202 and queued.json()["enqueued"] == 1, queued.text
    client = redis.Redis.from_url(stack.system.redis_url or "", decode_responses=True)
    done_key = f"{stack.keys}:queries:done"
    wait_for(lambda: client.xlen(done_key) == 1, 180, "the worker finishes the queued query", stack)
    ((_, record),) = client.xrange(done_key)
    from_queue = set(json.loads(record["pair_ids"]))
    assert record["query"] == "patio umbrella" and from_queue and int(record["accepted"]) == len(from_queue)

    # The sink of that venv writes both syntheses' accepted pairs to Parquet, each once.
    expected = from_http | from_queue
    wait_for(lambda: expected <= stored_pair_ids(store), 60, "the sink stores every accepted pair", stack)
    rows = [row for path in sorted(store.glob("pairs-*.parquet")) for row in pq.read_table(path).to_pylist()]
    assert sorted(row["pair_id"] for row in rows) == sorted(expected)
    assert {row["query"] for row in rows} == {"cordless drill", "patio umbrella"}
    assert all(row["pair_id"] == pair_id(row["query"], row["product_id"]) for row in rows)
    assert {row["pair_id"] for row in rows if row["query"] == "patio umbrella"} == from_queue
    assert httpx.get(f"{url}/v1/queue", timeout=10).json()["done"] == 1

    # Every gateway-side process drains and exits cleanly on SIGTERM (uvicorn finishes its graceful
    # shutdown, then re-raises the SIGTERM it caught, by design).
    for name, clean in (("gateway", {0, -signal.SIGTERM}), ("worker", {0}), ("sink", {0})):
        code = stack.stop(name)
        assert code in clean, f"{name} exited with {code}:\n{stack.log(name)}"
        assert "Traceback" not in stack.log(name), stack.log(name)
