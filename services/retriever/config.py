"""Retriever settings (prefix TAILSYNTH_RETRIEVER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.core.errors import ConfigError
from services.core.settings import GrpcServiceSettings, encoder_backend_field
from services.retriever.shards import Shard, parse_shard


class RetrieverSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_RETRIEVER_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50052", description="host:port the retriever's gRPC server listens on.")
    index_dir: Path | None = Field(None, description="Index root; default <state dir>/index.")
    index_type: str = Field(
        "auto",
        pattern="^(auto|flat|hnsw|ivf_flat|ivf_pq)$",
        description="auto (Flat up to flat_max_products, HNSW up to hnsw_max_products, else IVF-Flat), "
        "flat (exact), hnsw, ivf_flat, ivf_pq (compressed codes, least memory).",
    )
    flat_max_products: int = Field(
        20_000, ge=0, description="auto picks exact Flat search up to this many products."
    )
    hnsw_max_products: int = Field(
        1_000_000, ge=0, description="auto picks HNSW up to this many products, IVF-Flat above."
    )
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW graph degree M.")
    hnsw_ef_construction: int = Field(200, ge=8, le=2048, description="HNSW efConstruction.")
    hnsw_ef_search: int = Field(
        128, ge=8, le=4096, description="HNSW efSearch (raised to top_k when smaller)."
    )
    ivf_nlist: int = Field(
        0,
        ge=0,
        le=65_536,
        description="IVF inverted lists; 0: about 4*sqrt(products), at most training vectors / 39.",
    )
    ivf_nprobe: int = Field(
        16, ge=1, le=65_536, description="IVF lists searched per query (clamped to nlist)."
    )
    ivf_train_max: int = Field(
        200_000,
        ge=1_000,
        le=10_000_000,
        description="Most vectors sampled to train IVF centroids and PQ codes.",
    )
    pq_m: int = Field(
        0,
        ge=0,
        le=256,
        description="IVF-PQ sub-quantizers (must divide the dimension); 0: largest divisor <= dim/8.",
    )
    pq_nbits: int = Field(8, ge=4, le=8, description="IVF-PQ bits per sub-quantizer code.")
    faiss_gpu: str = Field(
        "auto",
        pattern="^(auto|on|off)$",
        description="Serve Flat/IVF indexes from the GPU: auto (when faiss-gpu sees one), on (required), off.",
    )
    reload_interval_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="Seconds between checks of the index root's CURRENT for a new version; 0 disables hot reload.",
    )
    max_texts: int = Field(256, ge=1, le=10_000, description="Most texts one Search call may carry.")
    max_top_k: int = Field(1000, ge=1, le=100_000, description="Largest top_k one Search call may ask for.")
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Encoder batch size.")
    shard: str = Field(
        "0/1", description="Shard i/N of the catalog this retriever indexes and serves; 0/1 is all of it."
    )
    batch_max_texts: int = Field(
        64,
        ge=0,
        le=10_000,
        description="Most texts encoded and searched together across concurrent Search calls; 0 turns batching off.",
    )
    batch_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Longest a Search call waits for others to share its batch; 0: only calls already queued.",
    )
    model_dir: Path | None = Field(
        None,
        description="Sentence-transformers model directory `synth index build` encodes with when --model is "
        "not given (e.g. one written by synth train retriever); unset: the packaged all-MiniLM-L6-v2. "
        "Updates and the service use the model each index version records.",
    )
    encoder_backend: str = encoder_backend_field(
        "Encoder runtime: auto (ONNX Runtime on CPU, PyTorch on GPU), torch, onnx."
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
