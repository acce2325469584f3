"""What the long-running Redis Stream consumers (the sink and the worker) share."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError


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


def backoff_s(failures: int, cap_s: float = 10.0) -> float:
    """Wait before retrying a dependency that failed `failures` times in a row: 0.5 s doubling to cap_s."""
    return float(min(cap_s, 0.25 * 2 ** min(failures, 10)))


async def sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stop is set first; return False when stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
        return False
    return True


def as_text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_entries(raw: Any) -> list[tuple[str, dict[str, str]]]:
    """[(id, fields)] from an XRANGE/XAUTOCLAIM-shaped reply, as text."""
    return [(as_text(i), {as_text(k): as_text(v) for k, v in (f or {}).items()}) for i, f in raw or []]
