"""What the long-running Redis Stream consumers (the sink and the worker) share."""

from __future__ import annotations

import asyncio
import signal

from redis.asyncio import Redis
from redis.exceptions import ResponseError


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


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the consumer group (and the stream) from the start of the stream, unless it exists."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
