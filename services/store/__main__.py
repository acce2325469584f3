"""python -m services.store (`synth sink`): the training-store sink (Redis Stream -> Parquet)."""

from __future__ import annotations

from services.core.optional import require_role

require_role("store")  # before the imports below, which need the gateway extra

import asyncio
import logging

from services.core.consumers import blocking_client
from services.core.logging import setup_logging
from services.core.settings import load_settings
from services.core.signals import stop_on_signals
from services.store.config import StoreSettings
from services.store.sink import ParquetSink

log = logging.getLogger("services.store")


async def run_sink(settings: StoreSettings) -> int:
    if not settings.redis_url:
        log.error("TAILSYNTH_REDIS_URL is not set; the sink needs the Redis that holds the training stream")
        return 2
    redis = blocking_client(settings.redis_url, settings.block_ms)
    stop = stop_on_signals()
    sink = ParquetSink(
        redis, settings.stream_key, settings.group, settings.consumer, settings.store_dir, settings.batch_size
    )
    log.info(
        "sink: %s -> %s (%d pairs already stored)", settings.stream_key, settings.store_dir, len(sink.stored)
    )
    try:
        await sink.run(settings.block_ms, stop)
    finally:
        await redis.aclose()
    log.info("sink stopped")
    return 0


def main() -> int:
    settings = load_settings(StoreSettings)
    setup_logging("sink", settings.log_level, settings.log_format)
    return asyncio.run(run_sink(settings))


if __name__ == "__main__":
    raise SystemExit(main())
