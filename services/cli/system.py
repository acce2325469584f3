"""The whole system as local processes: Redis, three gRPC services, the sink, workers and the gateway.

`synth up` runs it on the default ports; the integration tests run it on free ports. Children
get the environment plus the addresses chosen here, and are stopped in reverse order on exit.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.core.errors import ConfigError
from services.core.health import NotServing, wait_serving
from services.core.redis_server import EmbeddedRedis, free_port
from services.core.signals import stop_on_signals_sync
from services.retriever.build import index_is_current
from services.retriever.config import RetrieverSettings

log = logging.getLogger(__name__)

GRPC_SERVICES = ("rewriter", "retriever", "judge")
STARTUP_TIMEOUT_S = 600.0  # first start converts the LLM and builds the index


@dataclass
class Ports:
    rewriter: int = 50051
    retriever: int = 50052
    judge: int = 50053
    gateway: int = 8000

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


@dataclass
class LocalSystem:
    state_dir: Path
    catalog: Path
    ports: Ports = field(default_factory=Ports)
    redis_url: str | None = None
    workers: int = 1
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def env(self) -> dict[str, str]:
        # The debugging page is for people running the system locally; production config leaves it off.
        env = {"TAILSYNTH_GATEWAY_DEBUG_PAGE": "true", **self.base_env}
        env.update(
            {
                "TAILSYNTH_STATE_DIR": str(self.state_dir),
                "TAILSYNTH_REDIS_URL": self.redis_url or "",
                "TAILSYNTH_GATEWAY_PORT": str(self.ports.gateway),
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
            }
        )
        # The judge caches engine scores in the Redis the gateway uses, unless told otherwise.
        if "TAILSYNTH_JUDGE_CACHE_URL" not in self.base_env:
            env["TAILSYNTH_JUDGE_CACHE_URL"] = self.redis_url or ""
        for name in GRPC_SERVICES:
            port = getattr(self.ports, name)
            env[f"TAILSYNTH_{name.upper()}_BIND"] = f"127.0.0.1:{port}"
            env[f"TAILSYNTH_PIPELINE_{name.upper()}_TARGET"] = f"127.0.0.1:{port}"
        return env

    def _spawn(self, name: str, *args: str) -> None:
        # Own session: a Ctrl-C reaches only `synth up`, which then stops the children in order.
        self.processes[name] = subprocess.Popen(
            [sys.executable, *args], env=self.env(), start_new_session=True
        )

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise ConfigError(
                    f"{name} exited with code {process.returncode} during start-up; see its log above"
                )

    def ensure_index(self) -> None:
        settings = RetrieverSettings(state_dir=self.state_dir)
        if index_is_current(settings, self.catalog):
            return
        log.info("building the index for %s", self.catalog)
        command = [
            sys.executable,
            "-m",
            "services.cli.main",
            "index",
            "build",
            "--catalog",
            str(self.catalog),
        ]
        if subprocess.run(command, env=self.env()).returncode != 0:
            raise ConfigError(f"index build failed for {self.catalog}")

    def _wait_grpc(self) -> None:
        targets = [f"127.0.0.1:{getattr(self.ports, name)}" for name in GRPC_SERVICES]
        try:
            wait_serving(targets, STARTUP_TIMEOUT_S, check=self._check_alive, interval_s=0.5, what="services")
        except NotServing as error:
            raise ConfigError(str(error)) from None

    def _wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if httpx.get(f"{self.gateway_url}/readyz", timeout=3).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise ConfigError(f"gateway not ready after {timeout_s:.0f}s")

    def start(self) -> None:
        started = time.perf_counter()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.redis_url:
            self.redis = EmbeddedRedis(self.state_dir / "redis")
            self.redis_url = self.redis.start()
            log.info("embedded Redis-compatible server at %s", self.redis_url)
        try:
            self.ensure_index()
            for name in GRPC_SERVICES:
                self._spawn(name, "-m", f"services.{name}")
            self._wait_grpc()
            self._spawn("sink", "-m", "services.store")
            for number in range(self.workers):
                self._spawn(f"worker-{number}", "-m", "services.worker")
            self._spawn("gateway", "-m", "services.gateway")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("system ready in %.1fs", time.perf_counter() - started)

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Stop one child (SIGTERM drains it, SIGKILL does not) and return its exit code."""
        process = self.processes.pop(name)
        process.send_signal(sig)
        return process.wait(timeout_s)

    def restart_service(self, name: str) -> None:
        """Start a stopped gRPC service again and wait until every service is SERVING."""
        if name not in GRPC_SERVICES:
            raise ValueError(f"not a gRPC service: {name}")
        self._spawn(name, "-m", f"services.{name}")
        self._wait_grpc()

    def stop(self, timeout_s: float = 20.0) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name, process in self.processes.items():
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                process.kill()
                process.wait()
        self.processes.clear()
        if self.redis:
            self.redis.stop()
            self.redis = None

    def wait(self) -> int:
        """Block until SIGINT/SIGTERM or a child exits; return an exit code."""
        stop = stop_on_signals_sync()
        while not stop.is_set():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log.error("%s exited with code %s; stopping everything", name, process.returncode)
                    return 1
            time.sleep(0.5)
        return 0
