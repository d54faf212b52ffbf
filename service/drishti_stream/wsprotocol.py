"""uvicorn's sans-I/O WebSocket protocol, tuned for one camera and many clients.

Eight changes, each for a promise the camera makes:
- a small kernel send buffer per client, so a slow client's backlog is a few frames, not seconds of them
  (loopback autotuning would otherwise queue megabytes): it loses frames and gets the newest instead;
- a small kernel receive buffer per client, which only ever sends small control messages: a client that
  floods pings as fast as the camera answers them is read a few kB per turn of the event loop, its share,
  instead of megabytes per turn that starve every other client (and /health) for seconds;
- a frame already serialized for the wire (the camera frames each message once, `wire.Wire`) is written as
  is, so a client costs a socket write per frame, not an encode and a copy; the part of it that lies in the
  frame store's file goes with sendfile, from the page cache, so the kernel does not copy the image from
  Python once per client either; the ASGI scope extension `drishti.wire` offers `write_now(wire) -> bool`,
  which writes at once when the socket has room, so the fan-out needs no task switch per client while
  clients keep up;
- closing a client whose socket is full does not wait for room that may never come: the close frame is
  queued behind the unsent data and the connection is dropped after a short grace period;
- on shutdown clients get 1001 (going away), the code for a server that is stopping;
- a client that does not read what it is sent is not read from either, until it catches up: every ping
  it sends is answered with a pong, and a ping flood from a client that never reads its pongs would otherwise
  pile them up in memory without bound and stall the event loop for every client (TCP pushes back instead);
- an upgrade request that websockets itself refuses (a header line over 8 KiB, over 128 headers, a header
  value it cannot parse: limits h11 does not share) is answered and closed; uvicorn only handles the requests
  websockets accepts, so it would hold such a socket open, unanswered, for as long as the client liked;
- a client closed for not answering a keepalive ping is reported to the app as that (1011, "keepalive ping
  timeout"), where uvicorn reports only the lost connection (1005), as if the client had left.
Messages without the pre-framed bytes go through uvicorn unchanged, so any ASGI server still works.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from drishti_stream.wire import FileRange, Wire

WIRE_KEY = "drishti.wire"  # the ASGI send-message key and scope extension name
GOING_AWAY = 1001
KEEPALIVE_TIMEOUT = (1011, "keepalive ping timeout")  # the close code and reason websockets sends
CLOSE_GRACE_S = 1.0
SEND_BUFFER_BYTES = 128 * 1024
RECEIVE_BUFFER_BYTES = 8 * 1024


class CameraWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        # bytes may go to the socket directly only when nothing (TLS) stands between the transport and it
        plain = sock is not None and transport.get_extra_info("sslcontext") is None
        self._socket_fd: int | None = sock.fileno() if plain else None
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        refused = self.conn.handshake_exc
        if refused is not None and not self.handshake_initiated and not self.transport.is_closing():
            answer = b"".join(self.conn.data_to_send())  # the 414 or 431 websockets wrote, if it wrote one
            if not answer:
                reason = f"Failed to open a WebSocket connection: {refused}.\n"
                answer = self.conn.reject(400, reason).serialize()
            self.transport.write(answer)
            self.transport.close()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][WIRE_KEY] = {"write_now": self.write_now}

    def write_now(self, wire: Wire) -> bool:
        """Writes a pre-framed message if the socket has room now; False means: wait for room (or closed)."""
        if not self.writable.is_set() or not self.is_open():
            return False
        sent = 0
        if wire.from_file and self._socket_fd is not None and not self.transport.get_write_buffer_size():
            sent = self._send_from_file(wire, self._socket_fd, wire.from_file)
        if sent < len(wire.data):  # what the socket did not take now, the transport sends when it can
            self.transport.write(memoryview(wire.data)[sent:] if sent else wire.data)
        return True

    @staticmethod
    def _send_from_file(wire: Wire, socket_fd: int, stored: FileRange) -> int:
        """Sends the frame's head, then its tail from the store's file with sendfile. Returns the bytes the
        socket took: all, or fewer when it is full (or broken: the transport then finds out)."""
        head = memoryview(wire.data)[:len(wire.data) - stored.length]
        sent = 0
        try:
            sent = os.write(socket_fd, head)
            if sent == len(head):
                sent += os.sendfile(socket_fd, stored.file.fd, stored.offset, stored.length)
        except OSError:
            pass
        return sent

    def is_open(self) -> bool:
        return not (self.close_sent or self.disconnected or self.transport.is_closing()) and (
            self.conn.state is State.OPEN)

    async def send(self, message: Any) -> None:
        wire = message.get(WIRE_KEY)
        if wire is not None and message["type"] == "websocket.send" and self.handshake_complete:
            await self.writable.wait()
            if not self.write_now(wire):
                raise ClientDisconnected()
            return
        if message["type"] == "websocket.close" and self.handshake_complete and not self.writable.is_set():
            self.writable.set()  # queue the close frame behind the data the peer has not taken
            await super().send(message)
            if self.close_timer is not None:
                self.close_timer.cancel()
            self.close_timer = self.loop.call_later(CLOSE_GRACE_S, self.transport.abort)
            return
        await super().send(message)

    def pause_writing(self) -> None:
        super().pause_writing()
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        if not self.read_paused and not self.transport.is_closing():
            self.transport.resume_reading()  # unless the app has a message of the client's still to take

    async def receive(self) -> Any:
        message = await super().receive()  # resumes reading once the app has taken every message...
        if not self.writable.is_set() and not self.transport.is_closing():
            self.transport.pause_reading()  # ...which must wait while the client is not reading
        return message

    def keepalive_timeout(self) -> None:
        if not (self.close_sent or self.transport.is_closing()):
            code, reason = KEEPALIVE_TIMEOUT
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        super().keepalive_timeout()

    def shutdown(self) -> None:
        if not self.handshake_complete or self.close_sent:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": GOING_AWAY})
        self.conn.send_close(GOING_AWAY, "server shutting down")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.transport.close()
