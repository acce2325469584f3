"""POST /v1/queue and GET /v1/queue: queries for continuous synthesis by the workers."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from services.gateway.deps import ApiKeyDep, ResourcesDep
from services.gateway.schemas import EnqueueRequest, EnqueueResponse, ErrorBody, QueueStatus

router = APIRouter()

ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "The body could not be read (not UTF-8)."},
    401: {"model": ErrorBody, "description": "No API key, or an unknown one (when keys are configured)."},
    429: {"model": ErrorBody, "description": "The API key's rate limit is reached; retry after Retry-After."},
    408: {"model": ErrorBody, "description": "The request body did not arrive in time."},
    413: {"model": ErrorBody, "description": "Request body too large."},
    415: {
        "model": ErrorBody,
        "description": "The body is not sent as JSON (Content-Type: application/json).",
    },
    422: {"model": ErrorBody, "description": "Invalid queries, or more than the configured batch limit."},
    503: {"model": ErrorBody, "description": "Redis is unavailable; retry after Retry-After seconds."},
}


@router.post(
    "/v1/queue", status_code=status.HTTP_202_ACCEPTED, response_model=EnqueueResponse, responses=ERRORS
)
async def enqueue(body: EnqueueRequest, resources: ResourcesDep, _: ApiKeyDep) -> EnqueueResponse:
    """Queue queries for the synthesis workers; their accepted pairs go to the training store.

    Every query is validated as in /v1/synthesize before any is queued: one bad query refuses the batch.
    """
    limit = resources.queue.settings.max_enqueue
    if len(body.queries) > limit:
        raise HTTPException(422, f"{len(body.queries)} queries in one request; the limit is {limit}")
    ids = await resources.queue.enqueue(body.queries)
    return EnqueueResponse(enqueued=len(ids), ids=ids)


@router.get("/v1/queue", response_model=QueueStatus, responses={c: ERRORS[c] for c in (401, 429, 503)})
async def queue_status(resources: ResourcesDep, _: ApiKeyDep) -> QueueStatus:
    """How much work is waiting, in progress, dead-lettered and done."""
    return QueueStatus.model_validate(await resources.queue.status())
