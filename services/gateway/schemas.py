"""HTTP request and response schemas beyond services.pipeline.models (QueryItem, SynthesisResult)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.pipeline.models import QueryItem, SynthesisResult


class SynthesizeRequest(QueryItem):
    use_cache: StrictBool = Field(
        True, description="Serve a cached result for the same query and parameters."
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items are validated one by one in the route, so one bad query gets its own error and the rest
    # are still answered; the schema still documents each item as a SynthesizeRequest.
    queries: list[dict[str, Any]] = Field(
        min_length=1,
        description="Queries to synthesize, each shaped as the body of POST /v1/synthesize.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/SynthesizeRequest"}},
    )


class BatchItem(BaseModel):
    index: int = Field(description="Position of the query in the request.")
    status: int = Field(description="What POST /v1/synthesize would have answered for this query.")
    result: SynthesisResult | None = None
    error: str | list[dict[str, object]] | None = Field(None, description="Why it failed (status != 200).")


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(description="One per query, in request order.")
    succeeded: int
    failed: int


class EnqueueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[QueryItem] = Field(
        min_length=1, description="Queries for the continuous-synthesis workers."
    )


class EnqueueResponse(BaseModel):
    enqueued: int
    ids: list[str] = Field(description="Queue entry ids, in request order.")


class QueueStatus(BaseModel):
    length: int = Field(description="Entries in the queue stream (done ones are trimmed by the worker).")
    pending: int = Field(description="Entries a worker has claimed and not finished.")
    lag: int | None = Field(description="Entries not yet read by any worker (None before the first read).")
    dead: int = Field(description="Entries in the dead-letter stream.")
    done: int = Field(description="Completion records kept (the newest, up to the configured cap).")


class ErrorBody(BaseModel):
    detail: str | list[dict[str, object]] = Field(description="What was wrong with the request.")
