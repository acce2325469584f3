"""Training-store settings (prefix TAILSYNTH_STORE_)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings


class StoreSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_STORE_", extra="ignore", frozen=True)

    stream_key: str = Field(
        "tailsynth:pairs", min_length=1, description="Redis Stream that accepted pairs go to."
    )
    dir: Path | None = Field(None, description="Parquet store directory; default <state dir>/store.")
    group: str = Field("sink", min_length=1, description="Consumer group of the Parquet sink.")
    consumer: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="This sink's consumer name in the group (default: the host name).",
    )
    batch_size: int = Field(500, ge=1, le=100_000, description="Most pairs written to one Parquet file.")
    block_ms: int = Field(
        2000, ge=10, le=60_000, description="How long the sink waits for new pairs per read."
    )

    spool_dir: Path | None = Field(
        None, description="Where accepted pairs wait while Redis is unreachable; default <state dir>/spool."
    )
    replay_interval_s: float = Field(
        2.0, gt=0, le=600, description="How often spooled pairs are retried against Redis."
    )

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.state_dir / "spool"

    @property
    def store_dir(self) -> Path:
        return self.dir or self.state_dir / "store"

    @property
    def seen_key(self) -> str:
        return f"{self.stream_key}:seen"
