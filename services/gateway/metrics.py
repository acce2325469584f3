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
- tailsynth_gateway_redis_up: 1 when Redis answered the last health check (every health_interval_s).
- tailsynth_gateway_backend_up{service}: 1 when the gRPC service answered SERVING at the last check.
- tailsynth_gateway_backend_state_changes_total{service}: SERVING <-> not SERVING changes seen (flapping).
- tailsynth_gateway_spool_batches: batches of accepted pairs waiting in the local spool for Redis.
- tailsynth_gateway_spool_oldest_age_seconds: how long the oldest of them has waited (0: spool empty).
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
REDIS_UP = Gauge("tailsynth_gateway_redis_up", "1 when Redis answered the last health check.")
BACKEND_UP = Gauge(
    "tailsynth_gateway_backend_up", "1 when the gRPC service was SERVING at the last check.", ["service"]
)
BACKEND_CHANGES = Counter(
    "tailsynth_gateway_backend_state_changes_total",
    "Health state changes (SERVING <-> not) seen per gRPC service.",
    ["service"],
)
SPOOL_BATCHES = Gauge(
    "tailsynth_gateway_spool_batches", "Batches of accepted pairs waiting in the local spool for Redis."
)
SPOOL_OLDEST_AGE = Gauge(
    "tailsynth_gateway_spool_oldest_age_seconds",
    "Age of the oldest spooled batch (0 when the spool is empty).",
)
QUEUE_ENTRIES = Gauge(
    "tailsynth_queue_entries", "Continuous-synthesis queue entries by state (sampled).", ["state"]
)
