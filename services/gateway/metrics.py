"""Gateway metrics (tailsynth_gateway_*, tailsynth_queue_*); labels only from small fixed sets.

- tailsynth_gateway_requests_total{route, status}: HTTP requests by route template and status class.
- tailsynth_gateway_request_duration_seconds{route}: HTTP latency (a stream: until its last event).
- tailsynth_gateway_stage_duration_seconds{stage}: pipeline stage latency (rewrite, search_query, ...).
- tailsynth_gateway_cache_total{result}: synthesis cache hit, miss or bypass (hit ratio = hit / (hit+miss)).
- tailsynth_gateway_pairs_total{outcome}: judged pairs, accepted or rejected.
- tailsynth_gateway_backend_errors_total{service, code}: failed calls to the gRPC services (engine errors).
- tailsynth_gateway_auth_failures_total{reason}: requests refused for a missing or unknown API key.
- tailsynth_gateway_rate_limited_total{key}: requests refused with 429, by API key name.
- tailsynth_gateway_redis_calls_total{outcome}: Redis calls on the request path: ok, timeout, error
  (connection failure) or skipped (not tried: the breaker is open).
- tailsynth_gateway_redis_breaker_state: 0 closed (calling Redis), 1 half-open (one trial call), 2 open.
- tailsynth_queue_entries{state}: continuous-synthesis queue length, pending, lag and dead, sampled.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "tailsynth_gateway_requests_total", "HTTP requests by route and status class.", ["route", "status"]
)
REQUEST_SECONDS = Histogram(
    "tailsynth_gateway_request_duration_seconds",
    "HTTP request latency by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
STAGE_SECONDS = Histogram(
    "tailsynth_gateway_stage_duration_seconds",
    "Latency of each synthesis stage.",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CACHE = Counter("tailsynth_gateway_cache_total", "Synthesis cache lookups.", ["result"])
PAIRS = Counter("tailsynth_gateway_pairs_total", "Judged query-product pairs.", ["outcome"])
BACKEND_ERRORS = Counter(
    "tailsynth_gateway_backend_errors_total", "Failed gRPC calls by service and status.", ["service", "code"]
)
AUTH_FAILURES = Counter(
    "tailsynth_gateway_auth_failures_total", "Requests refused for a missing or unknown API key.", ["reason"]
)
RATE_LIMITED = Counter("tailsynth_gateway_rate_limited_total", "Requests refused with 429.", ["key"])
REDIS_CALLS = Counter(
    "tailsynth_gateway_redis_calls_total", "Redis calls on the request path by outcome.", ["outcome"]
)
REDIS_BREAKER_STATE = Gauge(
    "tailsynth_gateway_redis_breaker_state", "Redis breaker: 0 closed, 1 half-open, 2 open."
)
QUEUE_ENTRIES = Gauge(
    "tailsynth_queue_entries", "Continuous-synthesis queue entries by state (sampled).", ["state"]
)
