"""Gateway settings (prefix TAILSYNTH_GATEWAY_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_GATEWAY_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="Address the HTTP gateway listens on.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of the gateway.")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="Seconds a synthesis result stays cached.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body the API accepts.")
    read_timeout_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a request's headers, and then its body, may take to arrive; a connection "
        "without complete headers by then is closed, a body that is not complete gets 408.",
    )
    grace_s: float = Field(
        30.0, gt=0, le=600, description="Seconds in-flight requests get to finish after SIGTERM."
    )
    batch_max_queries: int = Field(
        32, ge=1, le=1000, description="Most queries one POST /v1/synthesize:batch may carry."
    )
    batch_concurrency: int = Field(
        4, ge=1, le=64, description="Queries of one batch request synthesized at the same time."
    )
    debug_page: bool = Field(
        False, description="Serve the interactive debugging page at /debug (`synth up` turns it on)."
    )
    api_keys: str = Field(
        "",
        description="API keys, stored hashed: comma-separated `name:sha256hex[:per_minute]` entries "
        "(`synth apikey new NAME` makes one). Unset with no keys file, the API is open.",
    )
    api_keys_file: Path | None = Field(
        None, description="File of API key entries, one per line (e.g. a mounted Kubernetes Secret)."
    )
    rate_limit_per_minute: int = Field(
        0,
        ge=0,
        description="Requests per minute per API key (a batch counts each query) unless its entry sets "
        "its own; with no keys configured, one shared limit for all callers. 0 = unlimited.",
    )
    redis_timeout_s: float = Field(
        0.5,
        gt=0,
        le=30,
        description="Longest one Redis call on the request path (cache lookup and store, rate limit, pair "
        "append, queue) may take; past it the request goes on without Redis (uncached, pairs spooled).",
    )
    redis_breaker_failures: int = Field(
        2,
        ge=1,
        le=100,
        description="Redis timeouts or connection failures in a row after which the gateway stops calling "
        "Redis for TAILSYNTH_GATEWAY_REDIS_BREAKER_RESET_S; a request waits on a stalled Redis at most "
        "this many times TAILSYNTH_GATEWAY_REDIS_TIMEOUT_S.",
    )
    redis_breaker_reset_s: float = Field(
        5.0, gt=0, le=600, description="Seconds the Redis breaker stays open before one trial call."
    )
    health_interval_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Seconds between the gateway's background checks of the backends, Redis and the spool "
        "(the /readyz fields and the tailsynth_gateway_*_up and spool gauges).",
    )
    flap_window_s: float = Field(
        300.0, gt=0, le=86400, description="Window in which a backend's health state changes are counted."
    )
    flap_changes: int = Field(
        4,
        ge=2,
        le=1000,
        description="State changes within TAILSYNTH_GATEWAY_FLAP_WINDOW_S that make a backend flapping "
        "(/readyz then reports the gateway degraded).",
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins allowed to call the API from a browser; empty = CORS off."
    )

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]
