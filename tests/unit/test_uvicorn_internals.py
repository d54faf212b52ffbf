"""The camera's WebSocket protocol (service/drishti_stream/wsprotocol.py) subclasses uvicorn's private
sans-I/O protocol. A uvicorn release that renames or drops what it relies on must fail here, naming it, rather
than as a hang or a lost close frame in a stream test. pyproject.toml bounds uvicorn to the releases checked
this way.
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
    "pause_writing": "flow control from the transport (overridden)",
    "resume_writing": "flow control from the transport (overridden)",
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

