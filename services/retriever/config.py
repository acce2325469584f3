"""Retriever settings (prefix TAILSYNTH_RETRIEVER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.core.errors import ConfigError
from services.core.settings import GrpcServiceSettings
from services.retriever.shards import Shard, parse_shard


class RetrieverSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_RETRIEVER_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50052", description="host:port the retriever's gRPC server listens on.")
    index_dir: Path | None = Field(None, description="Index root; default <state dir>/index.")
    index_type: str = Field(
        "auto",
        pattern="^(auto|flat|hnsw)$",
        description="auto (Flat up to flat_max_products, else HNSW), flat, hnsw.",
    )
    flat_max_products: int = Field(
        20_000, ge=0, description="auto picks exact Flat search up to this many products."
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree M.")
    hnsw_ef_construction: int = Field(200, ge=8, le=2048, description="HNSW efConstruction.")
    hnsw_ef_search: int = Field(
        128, ge=8, le=4096, description="HNSW efSearch (raised to top_k when smaller)."
    )
    max_texts: int = Field(256, ge=1, le=10_000, description="Most texts one Search call may carry.")
    max_top_k: int = Field(1000, ge=1, le=100_000, description="Largest top_k one Search call may ask for.")
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Encoder batch size.")
    shard: str = Field(
        "0/1", description="Shard i/N of the catalog this retriever indexes and serves; 0/1 is all of it."
    )

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        try:
            return str(parse_shard(value))
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @property
    def shard_spec(self) -> Shard:
        return parse_shard(self.shard)

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.index_root
