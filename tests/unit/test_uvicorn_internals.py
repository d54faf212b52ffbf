"""The camera's WebSocket protocol (service/drishti_stream/wsprotocol.py) subclasses uvicorn's private
sans-I/O protocol, and its HTTP protocol (httpprotocol.py) uvicorn's h11 one. A uvicorn release that renames
or drops what they rely on must fail here, naming it, rather than as a hang or a lost close frame in a stream
test. pyproject.toml bounds uvicorn to the releases checked this way.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.config import Config
from uvicorn.server import ServerState

# What CameraWebSocketProtocol reads, calls or overrides on uvicorn's class.
RELIED_ON = {
    "writable": "an asyncio.Event set while the socket accepts writes (flow control)",
    "close_timer": "the timer that drops a connection whose close handshake does not finish",
    "stop_keepalive": "stops the ping task before the shutdown close frame",
    "close_sent": "whether a close frame went out",
    "disconnected": "whether the peer went away",
    "handshake_complete": "whether the upgrade finished",
    "conn": "the websockets sans-I/O ServerProtocol",
    "queue": "the ASGI receive queue",
    "loop": "the event loop",
    "send": "the ASGI send callable (overridden)",
    "shutdown": "server shutdown (overridden)",
    "handle_connect": "the upgrade event (overridden)",
    "connection_made": "the transport's arrival (overridden)",
    "data_received": "bytes from the client (overridden: upgrades websockets refused)",
    "handshake_initiated": "whether websockets accepted the upgrade request and uvicorn handed it to the app",
    "read_paused": "whether uvicorn paused reading until the app takes the client's message",
    "receive": "the ASGI receive callable (overridden: reading stays paused while writes are)",
    "keepalive_timeout": "a keepalive ping unanswered in time (overridden: the app learns why)",
    "transport": "the connection's transport",
    "pause_writing": "flow control from the transport (overridden)",
    "resume_writing": "flow control from the transport (overridden)",
}

# What CameraHttpProtocol reads, calls or overrides on uvicorn's h11 class.
HTTP_RELIED_ON = {
    "conn": "the h11 Connection: their_state, our_state, trailing_data",
    "cycle": "the request being answered (None before the first); its response_complete",
    "transport": "the connection's transport",
    "loop": "the event loop",
    "connection_made": "the transport's arrival (overridden: the first request's deadline)",
    "connection_lost": "the connection's end (overridden)",
    "on_response_complete": "a response sent (overridden: the next request's deadline)",
    "handle_websocket_upgrade": "the hand-over to the WebSocket protocol (overridden)",
}


def test_uvicorn_still_has_what_the_camera_protocol_relies_on() -> None:
    from uvicorn.protocols.utils import ClientDisconnected  # noqa: F401  (raised by the camera's send)
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    async def app(scope, receive, send) -> None:
        pass

    config = Config(app=app, ws="websockets-sansio")
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = WebSocketsSansIOProtocol(config, ServerState(), {}, loop)
    finally:
        loop.close()
    missing = {name: why for name, why in RELIED_ON.items() if not hasattr(protocol, name)}
    assert not missing, (f"uvicorn {uvicorn.__version__}'s WebSocketsSansIOProtocol lacks what "
                         f"drishti_stream/wsprotocol.py relies on: {missing}")
    assert isinstance(protocol.writable, asyncio.Event), "writable is no longer an asyncio.Event"
    assert callable(protocol.stop_keepalive)


def test_uvicorn_still_has_what_the_camera_http_protocol_relies_on() -> None:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    async def app(scope, receive, send) -> None:
        pass

    config = Config(app=app, http="h11", h11_max_incomplete_event_size=1024)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = H11Protocol(config, ServerState(), {}, loop)
    finally:
        loop.close()
    missing = {name: why for name, why in HTTP_RELIED_ON.items() if not hasattr(protocol, name)}
    assert not missing, (f"uvicorn {uvicorn.__version__}'s H11Protocol lacks what "
                         f"drishti_stream/httpprotocol.py relies on: {missing}")
    assert isinstance(protocol.conn, h11.Connection)
    assert protocol.conn.their_state is h11.IDLE and protocol.conn.trailing_data == (b"", False)
