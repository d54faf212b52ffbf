"""Serving one WebSocket client of the stream: its query, its writer and reader, and why it left.

The fan-out policy (slots, rates, drops) is `broadcast`'s; this module holds the socket side of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from drishti_stream import telemetry
from drishti_stream.broadcast import Broadcaster, ClientRate, Subscriber, wants_meta
from drishti_stream.wsprotocol import KEEPALIVE_TIMEOUT, WIRE_KEY

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is overloaded, or this client too slow
POLICY_VIOLATION = 1008  # RFC 6455 close code: a request the server does not serve (a bad query parameter)

# What sending to a client that has left raises: the ASGI spec has the server raise an OSError subclass
# (uvicorn's ClientDisconnected), which Starlette's WebSocket.send turns into WebSocketDisconnect(1006).
# RuntimeError is not one: it is how Starlette and uvicorn report misuse (a send after close, a wrong
# message type), a bug that must not pass for a client that left.
CLIENT_GONE = (WebSocketDisconnect, OSError)


async def serve_websocket(websocket: WebSocket, broadcaster: Broadcaster, camera_fps: int) -> None:
    """Streams frames to one WebSocket client until it leaves, stalls, or the server stops."""
    await websocket.accept()
    try:
        rate = ClientRate.parse(websocket.query_params.get("fps"), camera_fps)
        meta = wants_meta(websocket.query_params)
    except ValueError as exc:
        telemetry.DISCONNECTS.labels("bad_request").inc()
        await websocket.close(POLICY_VIOLATION, str(exc))
        return
    if broadcaster.clients >= broadcaster.max_clients:
        telemetry.DISCONNECTS.labels("refused").inc()
        await websocket.close(TRY_AGAIN_LATER, f"camera is at its limit of {broadcaster.max_clients} clients")
        return
    client = websocket.client
    name = f"{client.host}:{client.port}" if client else "unknown"
    write_now = websocket.scope.get("extensions", {}).get(WIRE_KEY, {}).get("write_now")
    with broadcaster.subscribe(name, "websocket", write_now, rate, meta) as subscriber:
        writer = asyncio.create_task(_write(websocket, subscriber, broadcaster.send_timeout))
        reader = asyncio.create_task(_drain_incoming(websocket))
        done, pending = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        # a failure to read is a bug to surface, not a departure
        ended = reader.result() if reader in done and not reader.cancelled() else None
        if ended is not None and (ended.get("code"), ended.get("reason")) == KEEPALIVE_TIMEOUT:
            reason = "ping_timeout"
        elif writer in done and not writer.cancelled():
            reason = writer.result()
        else:
            reason = "client_closed"
    telemetry.DISCONNECTS.labels(reason).inc()
    log.info("client %s left (%s) after dropping %d frames", name, reason, subscriber.dropped)


async def _write(websocket: WebSocket, subscriber: Subscriber, send_timeout: float) -> str:
    """The client's writer: sends the slot's frame as soon as the socket has room. Returns why it ended."""
    while True:
        frame = await subscriber.next_frame()
        payload = frame.payload(subscriber.meta)
        assert payload is not None, "offer() fills the slot only with frames that have the client's message"
        text, wire = payload
        try:
            async with asyncio.timeout(send_timeout):
                await websocket.send({"type": "websocket.send", "text": text, WIRE_KEY: wire})
        except TimeoutError:
            with contextlib.suppress(*CLIENT_GONE):  # it may leave while being closed
                await websocket.close(
                    TRY_AGAIN_LATER, f"client accepted nothing for {send_timeout:g}s; closing slow client"
                )
            return "send_timeout"
        except CLIENT_GONE:
            return "client_closed"
        telemetry.SEND_LAG_SECONDS.observe(time.time() - frame.timestamp)


async def _drain_incoming(websocket: WebSocket) -> Message:
    """Reads (and ignores) what the client sends, so its close and pings are seen promptly; returns the
    disconnect message that ends it."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return message
