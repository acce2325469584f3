"""Prometheus metrics shared by the gRPC services.

Every metric is named tailsynth_<service>_<thing>_<unit>; labels come only from small fixed sets.

- tailsynth_grpc_requests_total{service, method, code}: RPCs handled, by final status code.
- tailsynth_grpc_request_duration_seconds{service, method}: server-side RPC latency.
- tailsynth_grpc_items_total{service, method}: items (texts, pairs, candidates) processed.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

GRPC_REQUESTS = Counter(
    "tailsynth_grpc_requests_total",
    "gRPC requests handled, by final status code.",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "tailsynth_grpc_request_duration_seconds",
    "Server-side gRPC request latency.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
GRPC_ITEMS = Counter(
    "tailsynth_grpc_items_total",
    "Items processed by gRPC requests (texts, pairs, candidates).",
    ["service", "method"],
)


def start_metrics_server(port: int) -> None:
    if port:
        start_http_server(port)
