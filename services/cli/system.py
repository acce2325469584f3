"""The whole system as local processes: Redis, three gRPC services, the sink, workers and the gateway.

`synth up` runs it on the default ports; the integration tests run it on free ports. Children
get the environment plus the addresses chosen here, and are stopped in reverse order on exit.

While it runs, every child is supervised: one that exits is started again (the embedded Redis on
the same port, from its append-only file) after a backoff that doubles from 0.5 s to 10 s, and the
log says so. A child that exits with code 2 (its configuration is unusable) or keeps exiting within a
minute of each start stops the whole system instead: restarting would not help.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.core.consumers import backoff_s
from services.core.errors import ConfigError
from services.core.health import NotServing, wait_serving
from services.core.redis_server import EmbeddedRedis, free_port
from services.core.signals import stop_on_signals_sync
from services.retriever.build import index_is_current
from services.retriever.config import RetrieverSettings

log = logging.getLogger(__name__)

GRPC_SERVICES = ("rewriter", "retriever", "judge")
STARTUP_TIMEOUT_S = 600.0  # first start converts the LLM and builds the index
REDIS = "redis"
CONFIG_ERROR_EXIT = 2  # what the services, the sink and the worker exit with on unusable settings
STABLE_AFTER_S = 60.0  # a child up this long has its restart count cleared
MAX_RESTARTS = 5  # restarts without staying up STABLE_AFTER_S, after which the system stops


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@dataclass
class Supervision:
    """One child's restart record."""

    started: float
    restarts: int = 0  # since it last stayed up STABLE_AFTER_S
    due: float | None = None  # when it is to be started again


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
    redis_dir: Path | None = None  # the embedded Redis's data; default <state dir>/redis
    commands: dict[str, tuple[str, ...]] = field(default_factory=dict)
    supervision: dict[str, Supervision] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _stopping: bool = False
    _supervisor: threading.Thread | None = None

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
        with self._lock:
            self.commands[name] = args
            self._launch(name)
            self.supervision[name] = Supervision(started=time.monotonic())

    def _launch(self, name: str) -> int:
        """Start the child `name` (again); return its process id."""
        if name == REDIS:
            assert self.redis is not None
            self.redis.start()
            assert self.redis.process is not None
            return self.redis.process.pid
        # Own session: a Ctrl-C reaches only `synth up`, which then stops the children in order.
        process = subprocess.Popen(
            [sys.executable, *self.commands[name]], env=self.env(), start_new_session=True
        )
        self.processes[name] = process
        log.info("started %s (pid %d)", name, process.pid)
        return process.pid

    def _exit_code(self, name: str) -> int | None:
        """The child's exit code (reaping it), or None while it runs."""
        if name == REDIS:
            process = self.redis.process if self.redis else None
            return process.poll() if process is not None else None
        return self.processes[name].poll()

    def _supervised(self) -> list[str]:
        return ([REDIS] if self.redis and REDIS in self.supervision else []) + [
            name for name in self.processes if name in self.supervision
        ]

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
            self.redis = EmbeddedRedis(self.redis_dir or self.state_dir / "redis")
            self.redis_url = self.redis.url
            pid = self._launch(REDIS)
            self.supervision[REDIS] = Supervision(started=time.monotonic())
            log.info("started redis (pid %d): embedded Redis-compatible server at %s", pid, self.redis_url)
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
        """Stop one child for good (SIGTERM drains it, SIGKILL does not) and return its exit code."""
        with self._lock:
            process = self.processes.pop(name)
            self.supervision.pop(name, None)
        process.send_signal(sig)
        return process.wait(timeout_s)

    def restart_service(self, name: str) -> None:
        """Start a stopped gRPC service again and wait until every service is SERVING."""
        if name not in GRPC_SERVICES:
            raise ValueError(f"not a gRPC service: {name}")
        self._spawn(name, "-m", f"services.{name}")
        self._wait_grpc()

    def supervise_once(self) -> str | None:
        """Restart the children that exited, each after its backoff; return why to stop everything, or None."""
        now = time.monotonic()
        with self._lock:
            if self._stopping:
                return None
            for name in self._supervised():
                record = self.supervision[name]
                if record.due is None:
                    code = self._exit_code(name)
                    if code is None:
                        if record.restarts and now - record.started >= STABLE_AFTER_S:
                            record.restarts = 0
                        continue
                    if code == CONFIG_ERROR_EXIT:
                        return f"{name} exited with code {code}: its configuration is unusable (see its log)"
                    if record.restarts >= MAX_RESTARTS:
                        return f"{name} {describe_exit(code)} after {record.restarts} restarts in a row"
                    delay = backoff_s(record.restarts + 1)
                    log.error("%s %s; restarting it in %.1fs", name, describe_exit(code), delay)
                    record.due = now + delay
                elif now >= record.due:
                    record.restarts += 1
                    try:
                        pid = self._launch(name)
                    except ConfigError as error:  # Redis did not come up; try again later
                        record.due = now + backoff_s(record.restarts + 1)
                        log.error("%s did not restart: %s", name, error)
                        continue
                    record.due, record.started = None, now
                    log.warning("%s restarted (pid %d, restart %d)", name, pid, record.restarts)
        return None

    @contextmanager
    def supervised(self, interval_s: float = 0.5) -> Iterator[None]:
        """Supervise the children from a background thread while the block runs (the soak test, tests)."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(interval_s):
                reason = self.supervise_once()
                if reason:
                    log.error("%s; no longer supervising", reason)
                    return

        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def stop(self, timeout_s: float = 20.0) -> None:
        with self._lock:
            self._stopping = True  # nothing is restarted from here on
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
        self.supervision.clear()
        if self.redis:
            self.redis.stop()
            self.redis = None

    def wait(self) -> int:
        """Supervise the children until SIGINT/SIGTERM (0) or one cannot be kept running (1)."""
        stop = stop_on_signals_sync()
        while not stop.is_set():
            reason = self.supervise_once()
            if reason:
                log.error("%s; stopping everything", reason)
                return 1
            time.sleep(0.5)
        return 0
