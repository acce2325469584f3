"""Synthesis over HTTP: one query, one query streamed stage by stage, or a batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from services.gateway.deps import ApiKeyDep, ResourcesDep, charge
from services.gateway.errors import failure, validation_details
from services.gateway.schemas import BatchItem, BatchRequest, BatchResponse, ErrorBody, SynthesizeRequest
from services.gateway.synthesis import (
    StreamError,
    event_name,
    fresh_stages,
    lookup,
    result_of,
    synthesis_stages,
)
from services.pipeline.models import SynthesisResult

router = APIRouter()

_ERRORS = {
    400: "The body could not be read (not UTF-8).",
    401: "No API key, or an unknown one (only when API keys are configured).",
    408: "The request body did not arrive in time (TAILSYNTH_GATEWAY_READ_TIMEOUT_S).",
    413: "Request body too large.",
    415: "The body is not sent as JSON (Content-Type must be application/json).",
    422: "Invalid request (unknown field, wrong type, empty or over-long query, out-of-range value).",
    429: "The API key's rate limit is reached; retry after Retry-After seconds.",
    502: "A backend service failed.",
    503: "A backend service or Redis is unavailable; retry after Retry-After seconds.",
    504: "A backend service did not answer before its deadline.",
}


def _responses(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"model": ErrorBody, "description": _ERRORS[code]} for code in codes}


# One server-sent event; `data` is the stage's JSON (the models in services.pipeline.models).
_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "enum": ["started", "rewrites", "retrieval", "judgments", "result", "stored", "error"],
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}


def _event(payload: BaseModel) -> bytes:
    return f"event: {event_name(payload)}\ndata: {payload.model_dump_json()}\n\n".encode()


@router.post(
    "/v1/synthesize",
    response_model=SynthesisResult,
    responses=_responses(400, 401, 408, 413, 415, 422, 429, 502, 503, 504),
)
async def synthesize_one(
    body: SynthesizeRequest, resources: ResourcesDep, _: ApiKeyDep
) -> SynthesisResult | Response:
    """Rewrite the query, retrieve products for it and every rewrite, judge them, and store accepted pairs.

    A repeat with the same normalised query and parameters is answered from the cache (`cached: true`)
    unless `use_cache` is false. Accepted pairs enter the training store once per (query, product).
    While Redis is unreachable the answer is computed uncached and its pairs wait in a local spool.
    """
    found = await lookup(body, resources)
    if found.cached is not None:  # the stored body as it is: no parsing, no re-serialising
        return Response(found.cached, media_type="application/json")
    return await result_of(fresh_stages(found, resources))


@router.post(
    "/v1/synthesize/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Server-sent events, one per stage: `started`, `rewrites`, `retrieval`, "
            "`judgments`, `result`, `stored` (a cached answer: `started` and `result`). A failure after "
            "the stream began ends it with an `error` event carrying the status the plain endpoint "
            "would have answered.",
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
        },
        **_responses(400, 401, 408, 413, 415, 422, 429, 502, 503, 504),
    },
)
async def synthesize_stream(
    body: SynthesizeRequest, resources: ResourcesDep, _: ApiKeyDep
) -> StreamingResponse:
    """The same synthesis as POST /v1/synthesize, streamed: each stage is sent as soon as it completes.

    Failures before the first event (backends unreachable, Redis down) are plain HTTP errors.
    """
    stages = synthesis_stages(body, resources)
    started = await anext(stages)

    async def events() -> AsyncIterator[bytes]:
        yield _event(started)
        try:
            async for stage in stages:
                yield _event(stage)
        except Exception as error:  # the status line is already sent: report the failure in-band
            status, detail = failure(error)
            yield _event(StreamError(status=status, detail=detail))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.post(
    "/v1/synthesize:batch",
    response_model=BatchResponse,
    responses=_responses(400, 401, 408, 413, 415, 422, 429),
)
async def synthesize_batch(body: BatchRequest, resources: ResourcesDep, key: ApiKeyDep) -> BatchResponse:
    """Synthesize several queries (up to the configured limit) in one request.

    Each query is validated and answered on its own: `status` is what POST /v1/synthesize would have
    answered for it, so an invalid query or a failed backend call leaves the others' results intact.
    Against a rate limit, a batch counts as one request per query.
    """
    limit = resources.settings.batch_max_queries
    if len(body.queries) > limit:
        raise HTTPException(422, f"{len(body.queries)} queries in one batch; the limit is {limit}")
    await charge(resources, key, len(body.queries) - 1)
    slots = asyncio.Semaphore(resources.settings.batch_concurrency)

    async def one(index: int, raw: dict[str, object]) -> BatchItem:
        try:
            item = SynthesizeRequest.model_validate(raw)
        except ValidationError as error:
            return BatchItem(index=index, status=422, error=validation_details(error))
        async with slots:
            try:
                result = await result_of(synthesis_stages(item, resources))
            except Exception as error:
                status, detail = failure(error)
                return BatchItem(index=index, status=status, error=detail)
        return BatchItem(index=index, status=200, result=result)

    results = await asyncio.gather(*(one(i, raw) for i, raw in enumerate(body.queries)))
    succeeded = sum(r.status == 200 for r in results)
    return BatchResponse(results=results, succeeded=succeeded, failed=len(results) - succeeded)
