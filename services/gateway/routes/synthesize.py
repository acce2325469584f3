"""POST /v1/synthesize: one query in, judged query-product pairs out."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.deps import ResourcesDep
from services.gateway.metrics import CACHE, PAIRS, STAGE_SECONDS
from services.gateway.schemas import ErrorBody, SynthesizeRequest
from services.pipeline.models import SynthesisResult
from services.pipeline.synthesize import SynthesisRequest

router = APIRouter()

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        413: "Request body too large.",
        422: "Invalid request (unknown field, wrong type, empty or over-long query, out-of-range value).",
        502: "A backend service failed.",
        503: "A backend service or Redis is unavailable.",
        504: "A backend service did not answer before its deadline.",
    }.items()
}


@router.post("/v1/synthesize", response_model=SynthesisResult, responses=ERRORS)
async def synthesize(body: SynthesizeRequest, resources: ResourcesDep) -> SynthesisResult:
    """Rewrite the query, retrieve products for it and every rewrite, judge them, and store accepted pairs.

    A repeat with the same normalised query and parameters is answered from the cache (`cached: true`)
    unless `use_cache` is false. Accepted pairs enter the training store once per (query, product).
    While Redis is unreachable the answer is computed uncached and its pairs wait in a local spool.
    """
    request = SynthesisRequest(query=body.query, num_rewrites=body.num_rewrites, top_k=body.top_k)
    version = await resources.pipeline.version(allow_stale=body.use_cache)
    if body.use_cache:
        cached = await resources.cache.get(request, version)
        CACHE.labels("hit" if cached else "miss").inc()
        if cached is not None:
            return cached
    else:
        CACHE.labels("bypass").inc()

    result = await resources.pipeline.run(request)
    for stage, ms in result.timings_ms.items():
        STAGE_SECONDS.labels(stage).observe(ms / 1000)
    PAIRS.labels("accepted").inc(result.accepted_count)
    PAIRS.labels("rejected").inc(len(result.pairs) - result.accepted_count)
    # Store before caching: a result is only served from cache once its pairs are in the store.
    written = await resources.writer.write(result)
    if not written.spooled:
        await resources.cache.put(request, result.pipeline_version, result)
    return result
