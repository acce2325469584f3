"""Query-queue and worker settings (prefix TAILSYNTH_QUEUE_)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings


def _default_consumer() -> str:
    # Host name (the pod name on Kubernetes) plus pid: two workers on one machine never share a name.
    return f"{socket.gethostname()}-{os.getpid()}"


class QueueSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_QUEUE_", extra="ignore", frozen=True)

    stream_key: str = Field(
        "tailsynth:queries", min_length=1, description="Redis Stream of queries waiting for synthesis."
    )
    group: str = Field("workers", min_length=1, description="Consumer group of the synthesis workers.")
    consumer: str = Field(
        default_factory=_default_consumer,
        min_length=1,
        description="This worker's consumer name (default: host name and process id).",
    )
    concurrency: int = Field(4, ge=1, le=256, description="Queries one worker synthesises at once.")
    max_attempts: int = Field(
        3, ge=1, le=100, description="Failed attempts after which a query goes to the dead-letter stream."
    )
    claim_idle_ms: int = Field(
        60_000,
        ge=100,
        le=3_600_000,
        description="A claimed query untouched this long belongs to a dead worker and is reclaimed.",
    )
    block_ms: int = Field(2000, ge=10, le=60_000, description="How long a worker waits for new queries.")
    max_enqueue: int = Field(1000, ge=1, le=100_000, description="Most queries in one POST /v1/queue.")
    done_maxlen: int = Field(
        100_000, ge=0, description="Completion records kept in <stream>:done (approximate cap)."
    )
    grace_s: float = Field(
        30.0, gt=0, le=600, description="Seconds in-flight queries get to finish after SIGTERM."
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Port for Prometheus /metrics; 0 disables it.")

    @property
    def dead_key(self) -> str:
        return f"{self.stream_key}:dead"

    @property
    def done_key(self) -> str:
        return f"{self.stream_key}:done"
