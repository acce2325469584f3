"""Where accepted pairs go: the training stream, or, while Redis is unreachable, the local spool.

The gateway and the worker write through PairWriter, so a Redis outage never drops an accepted pair:
it waits in the spool and is replayed (exactly once, by pair id) when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from prometheus_client import Counter
from redis.exceptions import RedisError

from services.core.consumers import sleep_unless_stopped
from services.pipeline.models import SynthesisResult
from services.store.spool import Spool
from services.store.stream import TrainingStream, is_pair, stream_entries

log = logging.getLogger(__name__)

STORE_PAIRS = Counter(
    "tailsynth_store_pairs_total",
    "Accepted pairs by where they went: stream (new), duplicate, spool, replayed (spool -> stream).",
    ["destination"],
)


@dataclass(frozen=True)
class Written:
    appended: int  # new in the stream
    duplicates: int  # already in the stream (same query and product)
    spooled: int  # on local disk, waiting for Redis


class PairWriter:
    def __init__(self, stream: TrainingStream, spool: Spool) -> None:
        self.stream = stream
        self.spool = spool

    async def write(self, result: SynthesisResult) -> Written:
        entries = stream_entries(result)
        if not entries:
            return Written(0, 0, 0)
        pairs = sum(1 for entry in entries if is_pair(entry))
        try:
            appended = await self.stream.append_entries(entries)
        except RedisError as error:
            path = await asyncio.to_thread(self.spool.put, entries)
            STORE_PAIRS.labels("spool").inc(pairs)
            log.warning("redis unavailable (%s): %d pairs spooled to %s", error, pairs, path.name)
            return Written(0, 0, pairs)
        STORE_PAIRS.labels("stream").inc(appended)
        STORE_PAIRS.labels("duplicate").inc(pairs - appended)
        return Written(appended, pairs - appended, 0)

    async def replay(self) -> int:
        """Move every spooled batch to the stream; return the new pairs. Raises RedisError if Redis is down."""
        replayed = 0
        for path in self.spool.batches():
            entries = await asyncio.to_thread(self.spool.read, path)
            if entries:
                replayed += await self.stream.append_entries(entries)
            await asyncio.to_thread(self.spool.remove, path)
        if replayed:
            STORE_PAIRS.labels("replayed").inc(replayed)
            log.info("replayed %d spooled pairs into the training stream", replayed)
        return replayed

    async def replay_until(self, stop: asyncio.Event, interval_s: float) -> None:
        """Replay whenever something is spooled, until stop is set; then try once more."""
        while True:
            if self.spool.batches():
                try:
                    await self.replay()
                except RedisError as error:
                    log.debug("spool replay deferred: %s", error)
            if stop.is_set():
                return
            await sleep_unless_stopped(stop, interval_s)
