"""Connection deadlines the HTTP server itself lacks: headers, body, idle keep-alive.

uvicorn (which BentoML's worker runs) closes a keep-alive connection only after an answer;
a connection that is opened and left silent, that sends half its headers, or that sends its
headers and then trickles (or never sends) its body is held for ever: a few hundred such
connections are a denial of service. :class:`GuardedHttpToolsProtocol` is uvicorn's
httptools protocol with three deadlines from the serving config (``limits``):

- ``header_timeout_s``: from the connection's start, or from a request's first byte on a
  kept-alive one, until its headers are complete; a partial request then gets a 408, a
  connection that sent nothing is closed;
- ``body_timeout_s``: from the headers until the whole body is in; a 408 when the answer has
  not begun, and the connection is closed either way (the endpoint then sees a disconnect);
- ``keep_alive_s``: uvicorn's own idle timer after an answer.

BentoML builds its uvicorn config without a way to name the protocol, so :func:`install`
points uvicorn's ``"auto"`` protocol (the default BentoML uses) at this class, in the
process that builds the service: each worker builds it before it starts serving.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.config import LimitsConfig

log = logging.getLogger(__name__)
PROTOCOL = f"{__name__}:GuardedHttpToolsProtocol"
TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, body and keep-alive deadlines."""

    limits: ClassVar[LimitsConfig] = LimitsConfig()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn types it int; it goes to loop.call_later, which takes float seconds
        self.timeout_keep_alive = self.limits.keep_alive_s  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False  # a request's first byte has come, its headers not yet

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, what: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        answered = self.cycle is not None and self.cycle.response_started
        if self._in_request or (what == "body" and not answered):
            limit = "header_timeout_s" if what == "headers" else "body_timeout_s"
            seconds = getattr(self.limits, limit)
            msg = (
                f'{{"error": "the request\'s {what} did not arrive within {seconds:g} s'
                f' (limits.{limit})", "field": "{what}"}}'
            ).encode()
            self.transport.write(TIMEOUT_408 % (len(msg), msg))
        log.info("closed a connection: its request's %s did not arrive in time", what)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm(self.limits.header_timeout_s, "headers")

    def on_headers_complete(self) -> None:
        self._in_request = False
        self._arm(self.limits.body_timeout_s, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def install(limits: LimitsConfig) -> None:
    """Serve with :class:`GuardedHttpToolsProtocol` at these limits (see the module doc)."""
    import uvicorn.config

    GuardedHttpToolsProtocol.limits = limits
    uvicorn.config.HTTP_PROTOCOLS["auto"] = PROTOCOL
