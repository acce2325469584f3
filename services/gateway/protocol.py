"""uvicorn's HTTP/1.1 (h11) protocol with a deadline for each request's headers.

uvicorn closes idle keep-alive connections only after a first response, and any byte received resets
that timer: a connection that opens and sends nothing, or sends its headers a byte at a time, is held
for ever. Here a request's headers must be complete within the deadline of the connection opening, or of
the previous response; otherwise the connection is closed. Once the headers are in, the body has
BodyLimits' timeout (services.gateway.middleware).
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


def with_header_deadline(seconds: float) -> type[H11Protocol]:
    class HeaderDeadlineProtocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:  # the headers are in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()  # the next request's headers get the same time

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                log.info("closing a connection that sent no complete request headers within %gs", seconds)
                self.transport.close()

    return HeaderDeadlineProtocol
