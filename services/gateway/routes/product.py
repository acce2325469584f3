"""POST /v1/synthesize:product: shopper queries generated from one product, filtered by a round trip,
each kept one synthesized and stored with its source (services/pipeline/product_queries.py)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from services.gateway.deps import ApiKeyDep, ResourcesDep, charge
from services.gateway.routes.synthesize import _responses
from services.gateway.synthesis import store_result
from services.pipeline.models import SynthesisResult
from services.pipeline.product_models import ProductItem, ProductResult

log = logging.getLogger(__name__)
router = APIRouter()


@router.post(
    "/v1/synthesize:product",
    response_model=ProductResult,
    responses=_responses(400, 401, 413, 422, 429, 502, 503, 504),
)
async def synthesize_product(body: ProductItem, resources: ResourcesDep, key: ApiKeyDep) -> ProductResult:
    """Ask the LLM for queries a shopper would type to find the product, in each style; keep those whose
    round trip passes (the product is in the query's top k, or the judge accepts the pair); synthesize each
    kept query like POST /v1/synthesize and store its pairs and rewrites record under origin
    `product:<product_id>:<style>`, the (query, product) pair among the accepted ones.

    Every generated query is in `candidates`, kept or dropped with its reason. Against a rate limit it
    counts as one request per query it may synthesize (styles x num_queries). Nothing is cached: each
    call samples new queries, and a product is asked for once per run (the CLI's journal skips done ones).
    """
    await charge(resources, key, len(body.styles) * body.num_queries - 1)

    async def store(result: SynthesisResult) -> tuple[int, int, int]:
        written = await store_result(resources, result)
        return written.appended, written.duplicates, written.spooled

    result = await resources.products.run(body, store)
    log.info(
        "product %s: %d queries generated, %d kept, %d accepted pairs in %.0f ms (dropped: %s)",
        result.product_id,
        result.generated,
        result.kept,
        result.accepted_count,
        result.timings_ms.get("total", 0.0),
        result.dropped,
    )
    return result
