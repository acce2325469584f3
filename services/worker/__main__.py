"""python -m services.worker (`synth worker`): continuous synthesis from the query queue."""

from __future__ import annotations

from services.core.optional import require_role

require_role("worker")  # before the imports below, which need the gateway extra

import asyncio
import logging

from services.core.consumers import blocking_client
from services.core.logging import setup_logging
from services.core.metrics import start_metrics_server
from services.core.settings import load_settings
from services.core.signals import stop_on_signals
from services.pipeline.config import PipelineSettings
from services.pipeline.synthesize import SynthesisPipeline
from services.store.config import StoreSettings
from services.store.spool import Spool
from services.store.stream import TrainingStream
from services.store.writer import PairWriter
from services.worker.config import QueueSettings
from services.worker.consumer import QueueWorker
from services.worker.queue import QueryQueue

log = logging.getLogger("services.worker")


async def run_worker(
    settings: QueueSettings, pipeline_settings: PipelineSettings, store: StoreSettings
) -> int:
    if not settings.redis_url:
        log.error("TAILSYNTH_REDIS_URL is not set; the worker needs the Redis that holds the query queue")
        return 2
    redis = blocking_client(settings.redis_url, settings.block_ms)
    stop = stop_on_signals()
    pipeline = SynthesisPipeline(pipeline_settings)
    writer = PairWriter(TrainingStream(redis, store.stream_key, store.seen_key), Spool(store.spool_path))
    worker = QueueWorker(QueryQueue(redis, settings), pipeline, writer, settings)
    replay = asyncio.create_task(writer.replay_until(stop, store.replay_interval_s))
    log.info(
        "worker %s: %s (group %s), %d at a time", settings.consumer, settings.stream_key, settings.group,
        settings.concurrency,
    )  # fmt: skip
    try:
        await worker.run(stop)
        stop.set()
        await replay
    finally:
        await pipeline.close()
        await redis.aclose()
    log.info("worker stopped")
    return 0


def main() -> int:
    settings = load_settings(QueueSettings)
    setup_logging("worker", settings.log_level, settings.log_format)
    start_metrics_server(settings.metrics_port)
    return asyncio.run(run_worker(settings, load_settings(PipelineSettings), load_settings(StoreSettings)))


if __name__ == "__main__":
    raise SystemExit(main())
