"""Pipeline settings (prefix TAILSYNTH_PIPELINE_): where the services are and how long to wait."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings


class PipelineSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_PIPELINE_", extra="ignore", frozen=True)

    rewriter_target: str = Field("127.0.0.1:50051", description="host:port of the rewriter service.")
    retriever_target: str = Field("127.0.0.1:50052", description="host:port of the retriever service.")
    judge_target: str = Field("127.0.0.1:50053", description="host:port of the judge service.")
    rewrite_timeout_s: float = Field(60.0, gt=0, le=600, description="Deadline of one Rewrite call.")
    search_timeout_s: float = Field(10.0, gt=0, le=600, description="Deadline of one Search call.")
    judge_timeout_s: float = Field(20.0, gt=0, le=600, description="Deadline of one Judge call.")
    version_ttl_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="How long the pipeline version (from the services' Describe) is reused.",
    )
