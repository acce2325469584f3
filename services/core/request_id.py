"""The request id: set once where a request enters (HTTP gateway, gRPC server), read by logs and clients.

It travels between processes as the `x-request-id` header (HTTP) and gRPC metadata key, so one id
ties together the gateway's and every service's log lines for a synthesis.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

HEADER = "x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str] = ContextVar("request_id", default="")


def current() -> str:
    return _current.get()


def accept(offered: str | None) -> str:
    """The caller's id when it is short and printable (safe to log and echo), else a new one."""
    if offered and _VALID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def bind(request_id: str) -> Token[str]:
    """Make request_id current; returns a token for reset()."""
    return _current.set(request_id)


def reset(token: Token[str]) -> None:
    _current.reset(token)
