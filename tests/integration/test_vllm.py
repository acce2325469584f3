"""vLLM for real, from the rewriter's own environment (.venv-vllm, `make vllm-env`), on SmolLM2 weights:

- the rewriter gRPC service with TAILSYNTH_REWRITER_ENGINES=vllm (concurrent calls, deadlines, Describe,
  SIGTERM without leaving the engine-core process behind);
- vLLM's OpenAI-compatible server, which the openai engine calls through both of its APIs.

Both start at once (each vLLM start takes ~30-60 s on 2 CPU cores) and are shared by the whole module.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from services.core.health import NotServing, wait_serving
from services.core.redis_server import free_port
from services.gen.synth.v1 import common_pb2, rewriter_pb2, rewriter_pb2_grpc
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import RewriteInput
from services.rewriter.engines.openai import OpenAIEngine

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SERVED_NAME = "smollm2"
START_TIMEOUT_S = 300
QUERIES = [
    "cordless drill for wood",
    "blue velvet sofa",
    "bathroom towel hooks",
    "warm white led bulbs",
    "kids bunk bed with stairs",
    "outdoor patio umbrella",
    "non slip bath mat",
    "stainless steel kitchen sink",
    "queen size mattress topper",
    "wall mounted coat rack",
]


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    log: Path
    address: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def _spawn(args: list[str], env: dict[str, str], log: Path, address: str) -> Started:
    with log.open("wb") as out:  # a file, not a pipe: vLLM logs a lot and must never block on it
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return Started(process, log, address)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_grpc_serving(started: Started, deadline: float) -> float:
    def alive() -> None:
        assert started.process.poll() is None, f"rewriter exited:\n{started.output()}"

    try:
        return wait_serving(started.address, deadline - time.monotonic(), check=alive, what="vllm rewriter")
    except NotServing as error:
        raise AssertionError(f"{error}:\n{started.output()}") from None


def _wait_http_ready(started: Started, deadline: float) -> float:
    while time.monotonic() < deadline:
        assert started.process.poll() is None, f"vLLM server exited:\n{started.output()}"
        try:
            if httpx.get(f"{started.address}/models", timeout=1).status_code == 200:
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"vLLM OpenAI server not ready after {START_TIMEOUT_S}s:\n{started.output()}")


@pytest.fixture(scope="module")
def vllm(rewriter_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Started]]:
    if not VLLM_PYTHON.exists():
        pytest.fail(f"{VLLM_PYTHON} is missing: build it with `make vllm-env` (make test does)")
    logs = tmp_path_factory.mktemp("vllm-logs")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    grpc_port, http_port = free_port(), free_port()
    rewriter_env = env | {
        "TAILSYNTH_STATE_DIR": str(tmp_path_factory.mktemp("state")),
        "TAILSYNTH_REWRITER_BIND": f"127.0.0.1:{grpc_port}",
        "TAILSYNTH_REWRITER_ENGINES": "vllm",
        "TAILSYNTH_REWRITER_MODEL_DIR": str(rewriter_model_dir),
    }
    started_at = time.monotonic()
    running = {
        "rewriter": _spawn(
            [str(VLLM_PYTHON), "-m", "services.rewriter"],
            rewriter_env,
            logs / "rewriter.log",
            f"127.0.0.1:{grpc_port}",
        ),
        "openai": _spawn(
            [
                *(str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server"),
                *("--model", str(rewriter_model_dir), "--served-model-name", SERVED_NAME),
                *("--host", "127.0.0.1", "--port", str(http_port)),
                *("--enforce-eager", "--dtype", "bfloat16", "--max-model-len", "1024"),
                # Seeded sampling and chunked prefill crash vllm-cpu 0.32 (see engines/vllm.py).
                "--no-enable-chunked-prefill",
            ],
            env,
            logs / "openai.log",
            f"http://127.0.0.1:{http_port}/v1",
        ),
    }
    try:
        deadline = started_at + START_TIMEOUT_S
        ready = {
            "rewriter": _wait_grpc_serving(running["rewriter"], deadline),
            "openai": _wait_http_ready(running["openai"], deadline),
        }
        print({name: f"ready after {at - started_at:.0f}s" for name, at in ready.items()})
        yield running
    finally:
        for started in running.values():
            if started.process.poll() is None:
                started.process.terminate()
        for started in running.values():
            try:
                started.process.wait(60)
            except subprocess.TimeoutExpired:
                started.process.kill()


def _rewrite(address: str, query: str, timeout: float = 120, **fields: int) -> rewriter_pb2.RewriteResponse:
    with grpc.insecure_channel(address) as channel:
        request = rewriter_pb2.RewriteRequest(query=query, **({"num_rewrites": 3} | fields))
        reply: rewriter_pb2.RewriteResponse = rewriter_pb2_grpc.RewriterStub(channel).Rewrite(
            request, timeout=timeout
        )
        return reply


def test_concurrent_rewrites_return_real_vllm_candidates(vllm: dict[str, Started]) -> None:
    address = vllm["rewriter"].address
    # Ten queries at once on vllm-cpu: ~120 s on a 2-core CPU without AVX-512 (plain torch matmuls),
    # beside the idle OpenAI server. The budget is for correctness here, not speed (see make bench).
    with ThreadPoolExecutor(len(QUERIES)) as pool:
        replies = list(pool.map(lambda q: _rewrite(address, q, timeout=300, seed=11), QUERIES))
    for query, reply in zip(QUERIES, replies, strict=True):
        assert not reply.failures, (query, reply.failures)
        assert reply.engine == "vllm" and reply.generated_tokens > 0
        assert 1 <= len(reply.candidates) <= 3, (query, reply)
        for candidate in reply.candidates:
            assert candidate.source == "llm:vllm"
            assert candidate.text.strip() and candidate.text.lower() != query
    # real words, not noise: most candidates share a word with their query
    related = sum(
        bool(set(c.text.lower().split()) & set(q.split()))
        for q, r in zip(QUERIES, replies, strict=True)
        for c in r.candidates
    )
    assert related >= sum(len(r.candidates) for r in replies) // 2


def test_same_seed_same_candidates(vllm: dict[str, Started]) -> None:
    first = _rewrite(vllm["rewriter"].address, "garden hose reel", seed=5)
    again = _rewrite(vllm["rewriter"].address, "garden hose reel", seed=5)
    assert [c.text for c in first.candidates] == [c.text for c in again.candidates]


def test_deadlines_too_short_and_very_long(vllm: dict[str, Started]) -> None:
    address = vllm["rewriter"].address
    with pytest.raises(grpc.RpcError) as caught:
        _rewrite(address, "cordless drill for wood", timeout=0.25, num_rewrites=16)
    assert caught.value.code() in {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}
    # A deadline months away is just "no hurry"; the abandoned request above did not wedge the engine.
    reply = _rewrite(address, "cordless drill for wood", timeout=1e7)
    assert reply.candidates and not reply.failures
    with pytest.raises(grpc.RpcError) as invalid:
        _rewrite(address, "cordless drill", num_rewrites=0)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_describe_names_the_vllm_engine_and_weights(vllm: dict[str, Started]) -> None:
    with grpc.insecure_channel(vllm["rewriter"].address) as channel:
        info = rewriter_pb2_grpc.RewriterStub(channel).Describe(common_pb2.DescribeRequest(), timeout=10)
    assert info.service == "rewriter" and info.engine == "vllm"
    assert info.version.startswith("vllm:smollm2-135m-instruct") and ":bfloat16|" in info.version
    assert "rewrite_v1@" in info.version  # every prompt a request may name is in the version


async def _openai_propose(url: str, api: str) -> list:
    # vllm-cpu without AVX-512 decodes a few tokens a second here: one unhurried attempt, not three short
    # ones (a timed-out request is resent behind the ones still decoding).
    settings = RewriterSettings(
        engines="openai",
        openai_base_url=url,
        openai_model=SERVED_NAME,
        openai_api=api,
        openai_timeout_s=300,
        openai_retries=0,
    )
    engine = OpenAIEngine(settings, asyncio.to_thread)
    await engine.start()
    try:
        return list(
            await asyncio.gather(
                *(engine.propose(RewriteInput(q, n=2, seed=i)) for i, q in enumerate(QUERIES[:2]))
            )
        )
    finally:
        await engine.close()


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_openai_engine_against_vllm_server(vllm: dict[str, Started], api: str) -> None:
    proposals = await _openai_propose(vllm["openai"].address, api)
    for query, proposal in zip(QUERIES[:2], proposals, strict=True):
        assert proposal.tokens > 0, (api, query)
        assert proposal.candidates, (api, query, proposal.dropped)
        for candidate in proposal.candidates:
            assert candidate.source == "llm:openai"
            assert "Query:" not in candidate.text and "\n" not in candidate.text


def test_sigterm_stops_the_rewriter_and_its_engine_core(vllm: dict[str, Started]) -> None:
    process = vllm["rewriter"].process
    engine_processes = _descendants(process.pid)
    assert engine_processes, "vLLM runs its engine core in child processes"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, vllm["rewriter"].output()
    assert time.monotonic() - started < 30
    time.sleep(0.5)
    assert not [pid for pid in engine_processes if _alive(pid)], "engine-core process left behind"
    assert "vllm engine shut down" in vllm["rewriter"].output()
