"""What one synthesis takes and produces: the request shape every front end validates (HTTP, queue),
the gateway's response schema, the cache's payload and the store's input."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from services.core.text import clean

MAX_QUERY_CHARS = 512
LOGGED = "query"
# '' or "query": a logged query; "product:<product id>:<style>": written by the LLM from that product.
ORIGIN_PATTERN = r"^(query|product:\S+:[a-z_]+)?$"
ORIGIN_DESCRIPTION = (
    "Where the query comes from: '' or `query` for a shopper's logged query (the default), "
    "`product:<product_id>:<style>` for one generated from a product (POST /v1/synthesize:product). "
    "It goes into the training store with every pair and rewrites record of the synthesis."
)
# Synthesis parameters a request may leave out, and their bounds: every front end reads them from here.
DEFAULT_NUM_REWRITES = 4
MAX_NUM_REWRITES = 16
DEFAULT_TOP_K = 20
MAX_TOP_K = 200


class QueryItem(BaseModel):
    """One query and its synthesis parameters: the unit of POST /v1/synthesize and of the queue."""

    model_config = ConfigDict(extra="forbid")

    query: Annotated[
        StrictStr,
        Field(
            max_length=MAX_QUERY_CHARS,
            description="The shopper's search query; not empty, not only whitespace.",
            examples=["cordless drill"],
            # Enforced by _meaningful (for its message); stated here so the schema says so too.
            json_schema_extra={"minLength": 1, "pattern": r"\S"},
        ),
    ]
    num_rewrites: StrictInt = Field(
        DEFAULT_NUM_REWRITES, ge=1, le=MAX_NUM_REWRITES, description="Rewrites to ask the LLM for."
    )
    top_k: StrictInt = Field(
        DEFAULT_TOP_K, ge=1, le=MAX_TOP_K, description="Products retrieved per query and rewrite."
    )
    origin: StrictStr = Field("", max_length=256, pattern=ORIGIN_PATTERN, description=ORIGIN_DESCRIPTION)

    @field_validator("query")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        cleaned = clean(value)
        if not cleaned:
            raise ValueError("query is empty or only whitespace")
        return cleaned


class Rewards(BaseModel):
    """What live retrieval and the judges say about one rewrite; each in [0, 1] except increment."""

    intent: float = Field(description="Judge score that the rewrite keeps the query's intent, [0, 1].")
    product_relevance: float = Field(
        description="Mean judge score of the rewrite's retrieved products against the original query."
    )
    relevance: float = Field(
        description="Mean of intent and product_relevance (intent alone if nothing retrieved)."
    )
    increment: float = Field(
        description="Relevant products the rewrite adds beyond the query's own, / the query's relevant "
        "products (BEQUE's increment; can exceed 1)."
    )
    alignment: float = Field(description="Share of the rewrite's retrieved products judged relevant.")
    diversity: float = Field(description="Share of the rewrite's products that no other rewrite retrieved.")


class Rewrite(BaseModel):
    text: str
    source: str = Field(
        description="Engine that proposed it: llm:hf, llm:vllm, llm:openai, catalog:spell, ..."
    )
    accepted: bool = Field(description="Kept the query's intent and cleared the relevance floor.")
    reason: str
    rewards: Rewards
    reward: float = Field(description="Weighted sum of the rewards (weights in the pipeline settings).")
    rank: int = Field(description="1 = highest reward; rewrites are listed in this order.")
    retrieved: int = Field(description="Products it retrieved.")


class EngineFailure(BaseModel):
    engine: str
    error: str


class Diagnostics(BaseModel):
    """What went wrong without failing the request, and what it cost."""

    rewriter_failures: list[EngineFailure] = Field(
        default_factory=list, description="Rewrite engines that failed; the others' candidates were used."
    )
    generated_tokens: int = Field(0, description="Tokens the LLM engines generated.")


class DroppedCandidate(BaseModel):
    text: str
    reason: str


class Pair(BaseModel):
    pair_id: str = Field(description="Deterministic id of (normalised query, product id).")
    product_id: str
    title: str
    score: float = Field(
        description="The judges' combined calibrated relevance to the original query, [0, 1]."
    )
    label: str = Field(description="exact, partial or irrelevant (graded from score).")
    accepted: bool
    reason: str = Field(description="Why: each judge's score against its threshold (or the ensemble's).")
    judges: dict[str, float] = Field(
        default_factory=dict, description="Each judge engine's score for the pair, [0, 1]."
    )
    retrieved_by: list[str] = Field(description="The query and/or rewrites whose top-k held this product.")
    found_by_query: bool = Field(description="The original query retrieved it too.")
    retrieval_score: float = Field(description="Best cosine similarity over the texts that retrieved it.")


class Candidate(BaseModel):
    """A proposed rewrite with the intent judge's verdict, before its products are known."""

    text: str
    source: str
    accepted: bool
    reason: str
    relevance: float = Field(description="Intent judges' combined score, [0, 1].")
    judges: dict[str, float] = Field(
        default_factory=dict, description="Each judge engine's intent score, [0, 1]."
    )


class RewritesStage(BaseModel):
    """Stage 1: the rewriter's candidates, judged for intent; dropped ones with their reasons."""

    candidates: list[Candidate]
    dropped_candidates: list[DroppedCandidate]
    diagnostics: Diagnostics = Field(default_factory=Diagnostics)


class SearchHit(BaseModel):
    product_id: str
    title: str
    score: float = Field(description="Cosine similarity to the searched text.")


class Search(BaseModel):
    text: str = Field(description="The query or an accepted rewrite.")
    hits: list[SearchHit]


class RetrievalStage(BaseModel):
    """Stage 2: the products each searched text retrieved (the query first)."""

    searches: list[Search]


class JudgmentsStage(BaseModel):
    """Stage 3: every distinct product judged against the original query."""

    pairs: list[Pair]


class SynthesisResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    rewrites: list[Rewrite]
    dropped_candidates: list[DroppedCandidate]
    pairs: list[Pair]
    accepted_count: int
    cached: bool = False
    timings_ms: dict[str, float]
    pipeline_version: str
    judge_version: str = Field(
        "", description="What the judge served: each engine's version and the acceptance policy."
    )
    diagnostics: Diagnostics = Field(default_factory=Diagnostics)
    origin: str = Field("", description=ORIGIN_DESCRIPTION)
