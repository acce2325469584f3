"""What product-side query generation takes and returns (POST /v1/synthesize:product, the CLI's journal)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from services.core.text import clean
from services.pipeline.models import MAX_QUERY_CHARS

Style = Literal["keywords", "attributes", "need", "misspelled"]
STYLES: tuple[Style, ...] = ("keywords", "attributes", "need", "misspelled")
# Why a generated query was kept, or dropped: the rewriter's parsing (empty, copy_of_title, too_long,
# not_text, duplicate), no_typo (a misspelling needs a word of four letters), or the round trip.
KEPT_REASONS = ("kept_by_retrieval", "kept_by_judge")


def _required(value: str) -> str:
    cleaned = clean(value)
    if not cleaned:
        raise ValueError("must not be empty or only whitespace")
    return cleaned


class ProductItem(BaseModel):
    """One product and what to generate for it: the body of POST /v1/synthesize:product."""

    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^\S+$",
            description="The product's id in the catalog the retriever serves (no spaces): the round trip "
            "looks for it in each generated query's top k.",
        ),
    ]
    title: Annotated[StrictStr, Field(max_length=MAX_QUERY_CHARS, description="The product's title.")]
    brand: StrictStr = Field("", max_length=128)
    category: StrictStr = Field("", max_length=256)
    description: StrictStr = Field(
        "", max_length=2000, description="Its first 240 characters go into the prompt."
    )
    styles: list[Style] = Field(
        default_factory=lambda: list(STYLES),
        min_length=1,
        description="Query styles to generate: keywords (a few words), attributes (the product type with "
        "a size, colour or material), need (what the shopper wants to do, in plain words), misspelled "
        "(a keywords query with one keyboard typo). Default: all.",
    )
    num_queries: StrictInt = Field(2, ge=1, le=8, description="Queries asked of the LLM per style.")
    top_k: StrictInt = Field(
        20, ge=1, le=200, description="Round trip depth, and products retrieved per query and rewrite."
    )
    num_rewrites: StrictInt = Field(4, ge=1, le=16, description="Rewrites per kept query's synthesis.")
    seed: StrictInt | None = Field(None, ge=0, description="Sampling seed of the LLM; unset: random.")

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        return _required(value)

    @field_validator("brand", "category", "description")
    @classmethod
    def _clean(cls, value: str) -> str:
        return clean(value)

    @field_validator("styles")
    @classmethod
    def _unique(cls, value: list[Style]) -> list[Style]:
        if len(set(value)) != len(value):
            raise ValueError("a style is listed twice")
        return value


class GeneratedQuery(BaseModel):
    """One query the LLM wrote for the product (or a typo made of one), kept or dropped, and why."""

    style: str
    text: str
    source: str = Field(description="llm:<engine>, or typos:keywords for a misspelling of a keywords query.")
    kept: bool
    reason: str = Field(
        description="kept_by_retrieval, kept_by_judge; or why it was dropped: empty, copy_of_title, "
        "too_long, not_text, duplicate, no_typo, round_trip_failed."
    )
    detail: str = Field("", description="The reason in words (rank, the judge's scores and thresholds).")
    rank: int | None = Field(None, description="The source product's rank in the query's top k (1 = first).")
    score: float | None = Field(None, description="The judges' combined score for (query, source product).")
    judges: dict[str, float] = Field(default_factory=dict, description="Each judge's score for that pair.")
    origin: str = Field("", description="product:<product_id>:<style>, as stored with its pairs.")


class ProductSynthesis(BaseModel):
    """The synthesis of one kept query, as stored."""

    query: str
    style: str
    origin: str
    accepted_count: int
    pair_ids: list[str] = Field(description="Its accepted pairs, the source pair among them.")
    source_pair_id: str = Field(description="The (generated query, source product) pair, accepted.")
    new: int = Field(0, description="Accepted pairs new to the training store.")
    duplicates: int = Field(0, description="Accepted pairs the store already held.")
    spooled: int = Field(0, description="Accepted pairs waiting in the spool while Redis is unreachable.")


class StyleFailure(BaseModel):
    """A rewrite engine that failed while writing a style's queries (the other engines' still count)."""

    style: str
    engine: str
    error: str


class ProductResult(BaseModel):
    product_id: str
    title: str
    candidates: list[GeneratedQuery] = Field(description="Every generated query, kept or dropped.")
    failures: list[StyleFailure] = Field(
        default_factory=list,
        description="Rewrite engines that failed for a style (a timeout on a busy machine, ...): that style "
        "has fewer queries; the CLI does the product again on its next run.",
    )
    syntheses: list[ProductSynthesis] = Field(description="One per kept query.")
    generated: int
    kept: int
    dropped: dict[str, int] = Field(description="Dropped queries by reason.")
    accepted_count: int = Field(description="Accepted pairs over every synthesis.")
    timings_ms: dict[str, float]
    pipeline_version: str
