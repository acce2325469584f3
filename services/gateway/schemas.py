"""HTTP request and response schemas beyond services.pipeline.models (QueryItem, SynthesisResult)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.pipeline.models import QueryItem


class SynthesizeRequest(QueryItem):
    use_cache: StrictBool = Field(
        True, description="Serve a cached result for the same query and parameters."
    )


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
