"""Judge settings (prefix TAILSYNTH_JUDGE_)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.core.settings import GrpcServiceSettings


class JudgeSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_JUDGE_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50053", description="host:port the judge's gRPC server listens on.")
    engine: str = Field("embedding", description="Judge engine: embedding (MiniLM similarity, calibrated).")
    # Platt scaling of MiniLM cosine into P(relevant), fitted on 12,000 Home Depot judgments
    # (relevant = mean human relevance >= 2.33).
    calibration_slope: float = Field(
        4.09, gt=0, description="Platt slope: score = sigmoid(slope * cos + intercept)."
    )
    calibration_intercept: float = Field(-1.17, description="Platt intercept.")
    product_threshold: float = Field(
        0.7, ge=0, le=1, description="A query-product pair is accepted at this score."
    )
    rewrite_threshold: float = Field(
        0.75, ge=0, le=1, description="A rewrite keeps the query's intent at this score."
    )
    exact_at: float = Field(0.8, ge=0, le=1, description="Score from which the label is EXACT.")
    partial_at: float = Field(
        0.6, ge=0, le=1, description="Score from which the label is PARTIAL (else IRRELEVANT)."
    )
    max_pairs: int = Field(2048, ge=1, le=100_000, description="Most pairs one Judge call may carry.")
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Encoder batch size.")

    @model_validator(mode="after")
    def _ordered_grades(self) -> JudgeSettings:
        if self.partial_at > self.exact_at:
            raise ValueError("TAILSYNTH_JUDGE_PARTIAL_AT must not exceed TAILSYNTH_JUDGE_EXACT_AT")
        return self
