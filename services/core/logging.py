"""One log format for every process: timestamp, process role, level, logger, message."""

from __future__ import annotations

import logging


def setup_logging(role: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format=f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # Libraries that log every HTTP request or weight file at INFO drown the service's own lines.
    for noisy in ("httpx", "urllib3", "transformers", "sentence_transformers", "faiss.loader"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
