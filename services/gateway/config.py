"""Gateway settings (prefix TAILSYNTH_GATEWAY_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.core.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TAILSYNTH_GATEWAY_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="Address the HTTP gateway listens on.")
    port: int = Field(8000, ge=1, le=65535, description="HTTP port of the gateway.")
    cache_ttl_s: int = Field(7 * 24 * 3600, ge=1, description="Seconds a synthesis result stays cached.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body the API accepts.")
    grace_s: float = Field(
        30.0, gt=0, le=600, description="Seconds in-flight requests get to finish after SIGTERM."
    )
