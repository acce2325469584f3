"""python -m services.gateway: the HTTP gateway."""

from __future__ import annotations

from services.core.optional import require_role

require_role("gateway")  # before the imports below, which need the gateway extra

import logging

import uvicorn

from services.core.errors import ConfigError
from services.core.logging import setup_logging
from services.core.settings import load_settings
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.protocol import with_header_deadline
from services.pipeline.config import PipelineSettings
from services.store.config import StoreSettings


def main() -> int:
    settings = load_settings(GatewaySettings)
    setup_logging("gateway", settings.log_level, settings.log_format)
    try:
        app = create_app(settings, load_settings(PipelineSettings), load_settings(StoreSettings))
    except ConfigError as error:
        logging.getLogger("services.gateway").error("%s", error)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=with_header_deadline(settings.read_timeout_s),
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=int(settings.grace_s),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
