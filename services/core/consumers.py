"""What the long-running Redis Stream consumers (the sink and the worker) share."""

from __future__ import annotations

import asyncio
import signal

from redis.asyncio import Redis


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; call from inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def blocking_client(url: str, block_ms: int) -> Redis:
    """A client whose socket timeout outlasts a blocking stream read of block_ms."""
    return Redis.from_url(url, socket_timeout=block_ms / 1000 + 5, socket_connect_timeout=2)
