"""One log format for every process: text for people, JSON lines for log collectors.

Every record carries the process role and the current request id, so one synthesis can be
followed across the gateway and the gRPC services.
"""

from __future__ import annotations

import json
import logging
from typing import Literal

from services.core import request_id

LogFormat = Literal["text", "json"]


class _RequestContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.current()
        record.request_id = current
        record.request_tag = f" [{current}]" if current else ""
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "role": self.role,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = getattr(record, "request_id", "")
        if current:
            entry["request_id"] = current
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(role: str, level: str = "INFO", log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(_RequestContext())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(role))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {role} %(levelname)s %(name)s%(request_tag)s: %(message)s")
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Libraries that log every HTTP request or weight file at INFO drown the service's own lines.
    for noisy in ("httpx", "urllib3", "transformers", "sentence_transformers", "faiss.loader"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
