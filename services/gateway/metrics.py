"""Gateway metrics (tailsynth_gateway_*); labels only from small fixed sets.

- tailsynth_gateway_requests_total{route, status}: HTTP requests by route template and status class.
- tailsynth_gateway_stage_duration_seconds{stage}: pipeline stage latency (rewrite, search_query, ...).
- tailsynth_gateway_cache_total{result}: synthesis cache hit, miss or bypass.
- tailsynth_gateway_pairs_total{outcome}: judged pairs, accepted or rejected.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "tailsynth_gateway_requests_total", "HTTP requests by route and status class.", ["route", "status"]
)
STAGE_SECONDS = Histogram(
    "tailsynth_gateway_stage_duration_seconds",
    "Latency of each synthesis stage.",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CACHE = Counter("tailsynth_gateway_cache_total", "Synthesis cache lookups.", ["result"])
PAIRS = Counter("tailsynth_gateway_pairs_total", "Judged query-product pairs.", ["outcome"])
