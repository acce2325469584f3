"""Pipeline settings (prefix TAILSYNTH_PIPELINE_): where the services are and how long to wait."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings
from services.pipeline.product_models import STYLES
from services.pipeline.rewards import RewardWeights

TYPOS = "typos"  # the misspelled style made from the keywords queries, no LLM call


def product_styles(value: str) -> dict[str, str]:
    """style=prompt pairs for every style; TYPOS only for misspelled."""
    styles: dict[str, str] = {}
    for part in value.split(","):
        style, sep, prompt = (x.strip() for x in part.partition("="))
        if not sep or style not in STYLES or not prompt.replace("_", "").isalnum() or style in styles:
            raise ValueError(f"expected style=prompt for each of {', '.join(STYLES)}, got {part!r}")
        if prompt == TYPOS and style != "misspelled":
            raise ValueError(f"only misspelled can be made with {TYPOS}")
        styles[style] = prompt
    missing = [s for s in STYLES if s not in styles]
    if missing:
        raise ValueError(f"no prompt for {', '.join(missing)}")
    return styles


class PipelineSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_PIPELINE_", extra="ignore", frozen=True)

    rewriter_target: str = Field("127.0.0.1:50051", description="host:port of the rewriter service.")
    retriever_target: str = Field(
        "127.0.0.1:50052",
        description="host:port of the retriever service; for a sharded catalog, comma-separated host:port "
        "of every shard, shard i/N at position i.",
    )
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
    feedback_titles: int = Field(
        5, ge=0, le=20, description="Titles of the query's top products sent to the rewriter as feedback."
    )
    reward_weights: str = Field(
        "relevance=0.4,increment=0.3,alignment=0.2,diversity=0.1",
        description="Weights of the rewards in each rewrite's final reward (name=weight, comma-separated).",
    )
    relevance_floor: float = Field(
        0.4, ge=0, le=1, description="Rewrites whose relevance reward is under this are rejected."
    )

    product_prompts: str = Field(
        "keywords=product_keywords_v1,attributes=product_attributes_v1,need=product_need_v1,misspelled=typos",
        description="Product-side query styles and the rewriter prompt each is written with (style=prompt, "
        "comma-separated; every style keywords, attributes, need, misspelled). misspelled=typos makes "
        "each keywords query's misspelling with one keyboard typo instead of asking the LLM "
        "(misspelled=product_misspelled_v1 asks it). Part of the pipeline version.",
    )
    product_concurrency: int = Field(
        2, ge=1, le=32, description="Kept queries of one product synthesized at the same time."
    )

    @field_validator("product_prompts")
    @classmethod
    def _product_prompts(cls, value: str) -> str:
        product_styles(value)
        return value

    @field_validator("reward_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        RewardWeights.parse(value)
        return value

    @field_validator("retriever_target")
    @classmethod
    def _targets(cls, value: str) -> str:
        targets = [t.strip() for t in value.split(",")]
        for target in targets:
            host, sep, port = target.rpartition(":")
            if not (sep and host and port):  # loose on purpose: gRPC target names (dns:///, unix:) pass
                raise ValueError(f"expected host:port (comma-separated for shards), got {target!r}")
        if len(set(targets)) != len(targets):
            raise ValueError(f"a shard's target is listed twice in {value!r}")
        return ",".join(targets)

    @property
    def retriever_targets(self) -> list[str]:
        """One per shard, shard i at position i (one target: the whole catalog)."""
        return self.retriever_target.split(",")

    @property
    def styles(self) -> dict[str, str]:
        """Each product-side query style and the prompt that writes it (TYPOS: made from keywords)."""
        return product_styles(self.product_prompts)

    @property
    def weights(self) -> RewardWeights:
        return RewardWeights.parse(self.reward_weights)
