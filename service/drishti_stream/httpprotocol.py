"""uvicorn's h11 HTTP protocol, with a deadline for each request a client sends.

uvicorn bounds what a client sends (h11's limit on a request's head, `h11_max_incomplete_event_size`) but
not how long it takes to send it: its keep-alive timer runs only between requests and restarts on every byte,
so a client that trickles its headers (slowloris), or opens a connection and sends nothing, holds a socket for
ever. Here a connection must finish each request, head and any body the camera does not read, within
`request_timeout` seconds of when the camera starts waiting for it; a slower one gets 408 and is closed. A
request the camera is answering (the MJPEG stream, say) is the route's business, not this deadline's, and so
is a WebSocket once upgraded.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT_BODY = b"request not received in time; closed\n"
REQUEST_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                            b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
                            % (len(REQUEST_TIMEOUT_BODY), REQUEST_TIMEOUT_BODY))


class CameraHttpProtocol(H11Protocol):
    request_timeout: float = 10.0

    @classmethod
    def with_request_timeout(cls, seconds: float) -> type[CameraHttpProtocol]:
        """The protocol class to give uvicorn (it builds one per connection from its Config alone)."""
        return type(cls.__name__, (cls,), {"request_timeout": seconds})

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._start_deadline()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._stop_deadline()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._stop_deadline()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.request_timeout, self._on_deadline)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return  # gone already, or being answered
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            return  # the request is in; what follows is the keep-alive timer's
        started, _ = self.conn.trailing_data
        if self.conn.our_state is h11.IDLE and started:
            self.transport.write(REQUEST_TIMEOUT_RESPONSE)  # part of a request came: say why it ends
        self.transport.close()

