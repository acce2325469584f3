"""Settings base: every value comes from environment variables with the TAILSYNTH_ prefix.

Each service has one settings class (prefix TAILSYNTH_<SERVICE>_); values every service shares
(state dir, Redis URL, log level) are read from unprefixed TAILSYNTH_ names through aliases.
Nothing else in the code reads os.environ.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TAILSYNTH_"


def shared(name: str, default: Any, description: str, **kwargs: Any) -> Any:
    """A field read from TAILSYNTH_<NAME> whatever the class prefix is."""
    env = f"{ENV_PREFIX}{name}"
    return Field(default, validation_alias=AliasChoices(env), description=description, **kwargs)


def encoder_backend_field(description: str) -> Any:
    """The sentence encoder's runtime (auto or a registered backend), as the retriever and the judge set it."""
    from services.core.encoder_backend import BACKENDS

    return Field("auto", pattern=f"^(auto|{'|'.join(BACKENDS.names())})$", description=description)


class BaseServiceSettings(BaseSettings):
    # populate_by_name: code and tests may pass shared fields by name (state_dir=...) as well as by alias.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, populate_by_name=True
    )

    state_dir: Path = shared(
        "STATE_DIR",
        Path(".tailsynth"),
        "Writable directory for converted models, indexes, Redis data and the store.",
    )
    log_level: str = shared("LOG_LEVEL", "INFO", "Python log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: Literal["text", "json"] = shared(
        "LOG_FORMAT", "text", "Log lines as text for people or JSON (one object per line) for collectors."
    )
    redis_url: str | None = shared(
        "REDIS_URL", None, "Redis URL; unset, `synth up` starts an embedded Redis-compatible server."
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def models_dir(self) -> Path:
        return self.state_dir / "models"

    @property
    def index_root(self) -> Path:
        return self.state_dir / "index"


class GrpcServiceSettings(BaseServiceSettings):
    """Shape shared by the three gRPC services; subclasses set the prefix and the default port."""

    bind: str = Field("127.0.0.1:50050", description="host:port the gRPC server listens on.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port for Prometheus /metrics; 0 disables it.")
    grace_s: float = Field(10.0, gt=0, le=300, description="Seconds in-flight RPCs get to finish on SIGTERM.")
    health_interval_s: float = Field(
        30.0, gt=0, description="Seconds between health probes that run real work on the model."
    )
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$", description="auto, cpu or cuda.")

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value


S = TypeVar("S", bound=BaseSettings)


def describe_error(error: ValidationError, settings_cls: type[BaseSettings]) -> str:
    prefix = settings_cls.model_config.get("env_prefix", "")
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        info = settings_cls.model_fields.get(field)
        alias = info.validation_alias if info else None
        env = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{field}".upper()
        lines.append(f"  {env}: {item['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(settings_cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment; on bad values print which variable is wrong and exit 2."""
    try:
        return settings_cls(**overrides)
    except ValidationError as error:
        print(describe_error(error, settings_cls), file=sys.stderr)
        raise SystemExit(2) from None


def env_table(classes: list[type[BaseSettings]]) -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: the configuration reference."""
    rows: dict[str, tuple[str, str, str]] = {}
    for cls in classes:
        prefix = cls.model_config.get("env_prefix", "")
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            env = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{name}".upper()
            if info.is_required():
                default = "(required)"
            elif info.default_factory is not None:
                default = "(computed)"
            else:
                default = "(unset)" if info.default is None else str(info.default)
            rows.setdefault(str(env), (str(env), default, info.description or ""))
    return sorted(rows.values())
