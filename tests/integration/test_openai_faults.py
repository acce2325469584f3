"""The openai engine against a real local HTTP server that misbehaves on purpose (503, 429 + Retry-After,
slow replies, garbage JSON, refusals), in-process and through the rewriter gRPC service next to the hf
engine, whose candidates must still flow while openai fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.core.health import wait_serving
from services.core.redis_server import free_port
from services.gen.synth.v1 import rewriter_pb2, rewriter_pb2_grpc
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import RewriteInput
from services.rewriter.engines.openai import OpenAIEngine, OpenAIError

CHAT_OK = {
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "cordless power drill"}},
        {"index": 1, "message": {"role": "assistant", "content": "drill driver kit"}},
    ],
    "usage": {"prompt_tokens": 120, "completion_tokens": 9},
}


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: CHAT_OK)  # dict/list -> JSON, str -> as is
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class FaultServer:
    """A real HTTP server on a free port that answers from a script; the last answer repeats."""

    def __init__(self) -> None:
        self.script: list[Answer] = [Answer()]
        self.hits: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    server.hits.append(
                        {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                    )
                    answer = server.script[0] if len(server.script) == 1 else server.script.pop(0)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(answer.delay_s)
                # No longer in flight once the reply starts: the client may send its next request as
                # soon as it has read this reply, before this thread would reach code after the write.
                with server.lock:
                    server.in_flight -= 1
                try:
                    raw = answer.body if isinstance(answer.body, str) else json.dumps(answer.body)
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(raw.encode())))
                    self.end_headers()
                    self.wfile.write(raw.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): that is the point of slow answers

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *answers: Answer) -> None:
        """Script the next answers, once the slow answers of an earlier test have finished sleeping."""
        deadline = time.monotonic() + 10
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.lock:
            self.script = list(answers)
            self.hits.clear()
            self.max_in_flight = 0

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    fault = FaultServer()
    yield fault
    fault.close()


async def _inline(fn, *args):  # type: ignore[no-untyped-def]
    return fn(*args)


async def _engine(url: str, **overrides: Any) -> OpenAIEngine:
    settings = RewriterSettings(
        engines="openai",
        openai_base_url=url,
        openai_model="smol",
        **{"openai_retries": 2, "openai_backoff_s": 0.01, "openai_timeout_s": 2.0} | overrides,
    )
    engine = OpenAIEngine(settings, _inline)
    await engine.start()
    return engine


async def _fails(engine: OpenAIEngine, deadline_s: float | None = None) -> str:
    try:
        with pytest.raises(OpenAIError) as caught:
            await engine.propose(RewriteInput("cordless drill", n=2, seed=1, deadline_s=deadline_s))
    finally:
        await engine.close()
    return str(caught.value)


async def test_503_is_retried_then_reported(server: FaultServer) -> None:
    server.answer(Answer(503, {"error": "overloaded"}))
    assert await _fails(await _engine(server.url)) == "openai: HTTP 503 after 3 attempts"
    assert len(server.hits) == 3


async def test_a_slow_server_times_out_per_attempt(server: FaultServer) -> None:
    server.answer(Answer(delay_s=1.5))
    started = time.perf_counter()
    message = await _fails(await _engine(server.url, openai_timeout_s=0.2, openai_retries=1))
    assert message == "openai: timed out after 2 attempts"
    assert len(server.hits) == 2
    assert time.perf_counter() - started < 1.2


async def test_garbage_json_is_retried_then_reported(server: FaultServer) -> None:
    server.answer(Answer(200, "<html>502 Bad Gateway</html>"))
    message = await _fails(await _engine(server.url))
    assert message.startswith("openai: unreadable reply") and message.endswith("after 3 attempts")
    assert len(server.hits) == 3


async def test_a_refusal_is_not_retried(server: FaultServer) -> None:
    server.answer(Answer(404, {"error": {"message": "The model `smol` does not exist."}}))
    message = await _fails(await _engine(server.url))
    assert message == "openai: HTTP 404: The model `smol` does not exist."
    assert len(server.hits) == 1


async def test_retry_after_is_honoured(server: FaultServer) -> None:
    server.answer(Answer(429, {"error": "slow down"}, headers={"Retry-After": "1"}), Answer())
    engine = await _engine(server.url, openai_backoff_s=0.0)
    started = time.perf_counter()
    try:
        proposal = await engine.propose(RewriteInput("cordless drill", n=2, seed=1))
    finally:
        await engine.close()
    assert time.perf_counter() - started >= 1.0
    assert len(server.hits) == 2
    assert [c.text for c in proposal.candidates] == ["cordless power drill", "drill driver kit"]


async def test_the_deadline_stops_retries_early(server: FaultServer) -> None:
    server.answer(Answer(503, {"error": "busy"}, headers={"Retry-After": "30"}))
    started = time.perf_counter()
    message = await _fails(await _engine(server.url, openai_retries=5), deadline_s=2.0)
    assert message == "openai: HTTP 503 after 1 attempts (no time left to retry)"
    assert time.perf_counter() - started < 1.0 and len(server.hits) == 1


async def test_an_unreachable_server_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    message = await _fails(await _engine(url, openai_retries=1))
    assert message == f"openai: cannot reach {url} (ConnectError) after 2 attempts"


async def test_request_shape_fewer_choices_and_usage(server: FaultServer) -> None:
    server.answer(Answer())
    engine = await _engine(server.url, openai_api_key="sk-test-123")
    try:
        proposal = await engine.propose(RewriteInput("cordless drill", n=4, seed=7))
    finally:
        await engine.close()
    (hit,) = server.hits
    assert hit["path"] == "/v1/chat/completions" and hit["auth"] == "Bearer sk-test-123"
    body = hit["body"]
    assert (body["model"], body["n"], body["seed"], body["max_tokens"]) == ("smol", 6, 7, 24)
    assert body["messages"][0]["role"] == "system" and body["messages"][-1]["content"] == "cordless drill"
    # 6 samples asked for, 2 came back: both used
    assert [(c.text, c.source) for c in proposal.candidates] == [
        ("cordless power drill", "llm:openai"),
        ("drill driver kit", "llm:openai"),
    ]
    assert proposal.tokens == 9


async def test_completions_api_sends_the_text_prompt(server: FaultServer) -> None:
    server.answer(Answer(body={"choices": [{"text": " hammer drill"}], "usage": {"completion_tokens": 3}}))
    engine = await _engine(server.url, openai_api="completions")
    try:
        proposal = await engine.propose(RewriteInput("drill for concrete", n=1))
    finally:
        await engine.close()
    (hit,) = server.hits
    assert hit["path"] == "/v1/completions" and hit["auth"] is None
    assert hit["body"]["prompt"].endswith("Query: drill for concrete\nRewrite:")
    assert hit["body"]["stop"] == ["\n"] and "seed" not in hit["body"]
    assert [c.text for c in proposal.candidates] == ["hammer drill"]


async def test_concurrency_is_limited(server: FaultServer) -> None:
    import asyncio

    server.answer(Answer(delay_s=0.3))
    engine = await _engine(server.url, openai_max_concurrency=2)
    try:
        proposals = await asyncio.gather(*(engine.propose(RewriteInput(f"drill {i}", n=1)) for i in range(6)))
    finally:
        await engine.close()
    assert len(server.hits) == 6 and server.max_in_flight == 2
    assert all(p.candidates for p in proposals)


# --- through the rewriter gRPC service -------------------------------------------------------------------


def _start_rewriter(engines: str, url: str, model_dir: Path, state_dir: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state_dir),
        "TAILSYNTH_REWRITER_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_REWRITER_ENGINES": engines,
        "TAILSYNTH_REWRITER_MODEL_DIR": str(model_dir),
        "TAILSYNTH_REWRITER_OPENAI_BASE_URL": url,
        "TAILSYNTH_REWRITER_OPENAI_MODEL": "smol",
        "TAILSYNTH_REWRITER_OPENAI_RETRIES": "1",
        "TAILSYNTH_REWRITER_OPENAI_BACKOFF_S": "0.01",
        "TAILSYNTH_REWRITER_OPENAI_API_KEY": "sk-never-logged",
        "TAILSYNTH_REWRITER_HEALTH_INTERVAL_S": "3600",  # no probe may hit the scripted server mid-test
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.rewriter"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    return f"127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def rewriters(
    server: FaultServer, rewriter_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("state")
    started = {
        name: _start_rewriter(engines, server.url, rewriter_model_dir, state)
        for name, engines in (("both", "openai,hf"), ("alone", "openai"))
    }
    processes = [process for _, process in started.values()]
    try:
        for address, process in started.values():
            wait_serving(address, 180, process=process, interval_s=0.1, what=f"rewriter at {address}")
        yield {name: address for name, (address, _) in started.items()}
    finally:
        logs = []
        for process in processes:
            process.terminate()
            logs.append(process.communicate(timeout=30)[0].decode())
        assert all(p.returncode == 0 for p in processes), logs
        assert not any("sk-never-logged" in log for log in logs)


@pytest.mark.slow
def test_failing_openai_is_reported_while_hf_candidates_flow(
    server: FaultServer, rewriters: dict[str, str]
) -> None:
    server.answer(Answer(503, {"error": "overloaded"}))
    with grpc.insecure_channel(rewriters["both"]) as channel:
        reply = rewriter_pb2_grpc.RewriterStub(channel).Rewrite(
            rewriter_pb2.RewriteRequest(query="cordless drill for wood", num_rewrites=3, seed=3), timeout=60
        )
    assert len(server.hits) == 2  # one retry
    assert [(f.engine, f.error) for f in reply.failures] == [
        ("openai", "error: openai: HTTP 503 after 2 attempts")
    ]
    assert reply.candidates and {c.source for c in reply.candidates} == {"llm:hf"}
    assert reply.engine == "openai,hf" and reply.generated_tokens > 0


@pytest.mark.slow
def test_both_engines_candidates_are_merged_when_openai_answers(
    server: FaultServer, rewriters: dict[str, str]
) -> None:
    server.answer(Answer())
    with grpc.insecure_channel(rewriters["both"]) as channel:
        reply = rewriter_pb2_grpc.RewriterStub(channel).Rewrite(
            rewriter_pb2.RewriteRequest(query="cordless drill for wood", num_rewrites=2, seed=3), timeout=60
        )
    assert not reply.failures
    sources = [c.source for c in reply.candidates]
    assert sources[:2] == ["llm:openai", "llm:openai"] and "llm:hf" in sources


@pytest.mark.slow
def test_a_service_whose_only_engine_fails_answers_unavailable(
    server: FaultServer, rewriters: dict[str, str]
) -> None:
    server.answer(Answer(200, "not json"))
    with grpc.insecure_channel(rewriters["alone"]) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            rewriter_pb2_grpc.RewriterStub(channel).Rewrite(
                rewriter_pb2.RewriteRequest(query="cordless drill", num_rewrites=2), timeout=30
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "openai: unreadable reply" in caught.value.details()
    assert len(server.hits) == 2


async def test_a_model_that_rambles_repeats_or_emits_garbage_gives_dropped_candidates(
    server: FaultServer,
) -> None:
    rambling = " ".join(["drill"] * 2000)  # ~2,000 tokens in one choice
    contents = [rambling, "Cordless  Drill", "", "{}<>|\\ ###", "@@@ 😀😀😀", "drill driver kit"]
    server.answer(
        Answer(
            body={
                "choices": [{"message": {"content": c}} for c in contents],
                "usage": {"completion_tokens": 2100},
            }
        )
    )
    engine = await _engine(server.url)
    try:
        proposal = await engine.propose(RewriteInput("cordless drill", n=4, seed=1, deadline_s=10))
    finally:
        await engine.close()
    assert [c.text for c in proposal.candidates] == ["drill driver kit"]
    reasons = {d.reason for d in proposal.dropped}
    assert {"too_long", "copy_of_query", "empty", "not_text"} <= reasons
    assert proposal.tokens == 2100
