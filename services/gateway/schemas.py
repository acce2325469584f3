"""HTTP request schema; the response is services.pipeline.models.SynthesisResult."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator

from services.core.text import clean

MAX_QUERY_CHARS = 512


class SynthesizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[
        StrictStr,
        Field(
            max_length=MAX_QUERY_CHARS, description="The shopper's search query.", examples=["cordless drill"]
        ),
    ]
    num_rewrites: StrictInt = Field(4, ge=1, le=16, description="Rewrites to ask the LLM for.")
    top_k: StrictInt = Field(20, ge=1, le=200, description="Products retrieved per query and rewrite.")
    use_cache: StrictBool = Field(
        True, description="Serve a cached result for the same query and parameters."
    )

    @field_validator("query")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        cleaned = clean(value)
        if not cleaned:
            raise ValueError("query is empty or only whitespace")
        return cleaned


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]] = Field(description="What was wrong with the request.")
