"""What ends a WebSocket client's stream: a departure is counted as one, a bug is not taken for a departure.

These run `serve_websocket` in-process on Starlette's own WebSocket over a fake ASGI server (its `receive`
and `send`), because Starlette's misuse errors (RuntimeError) cannot be provoked through a real client: a
real one can only leave, which tests/service/test_clients.py covers with a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from drishti_stream.broadcast import Broadcaster
from drishti_stream.camera import Frame
from drishti_stream.wire import text_frame
from drishti_stream.wsstream import serve_websocket
from prometheus_client import REGISTRY
from starlette.websockets import WebSocket
from uvicorn.protocols.utils import ClientDisconnected

Message = dict[str, Any]


def frame(frame_id: int) -> Frame:
    message = f'{{"frame_id": {frame_id}}}'
    return Frame(frame_id, time.time(), frame_id, b"", message, text_frame(message.encode()))


def disconnects(reason: str) -> float:
    return REGISTRY.get_sample_value("drishti_client_disconnects_total", {"reason": reason}) or 0.0


class FakeServer:
    """The ASGI server's side of one connection: the client connects and then says nothing; `fail` decides
    what sending a frame raises (None: the frame is taken)."""

    def __init__(self, fail: Callable[[], BaseException] | None = None,
                 fail_receive: Callable[[], BaseException] | None = None,
                 fail_close: Callable[[], BaseException] | None = None, stall: bool = False) -> None:
        self.fail = fail
        self.fail_receive = fail_receive
        self.fail_close = fail_close
        self.stall = stall  # sending a frame never completes: the client accepts nothing
        self.sent: list[Message] = []
        self._connected = False

    async def receive(self) -> Message:
        if not self._connected:
            self._connected = True
            return {"type": "websocket.connect"}
        if self.fail_receive is not None:
            raise self.fail_receive()
        await asyncio.Event().wait()  # the client never sends anything
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        if message["type"] == "websocket.send" and self.stall:
            await asyncio.Event().wait()
        if message["type"] == "websocket.send" and self.fail is not None:
            raise self.fail()
        if message["type"] == "websocket.close" and self.fail_close is not None:
            raise self.fail_close()
        self.sent.append(message)

    def websocket(self) -> WebSocket:
        scope = {"type": "websocket", "path": "/ws/stream", "query_string": b"", "headers": [],
                 "client": ("127.0.0.1", 50000), "extensions": {}}
        return WebSocket(scope, self.receive, self.send)


async def serve_one_frame(server: FakeServer, send_timeout: float = 5) -> None:
    """Serves one client, publishes a frame once it has subscribed, and waits (bounded) for the end."""
    broadcaster = Broadcaster(send_timeout=send_timeout, max_clients=10)
    serving = asyncio.create_task(serve_websocket(server.websocket(), broadcaster, camera_fps=30))
    while broadcaster.clients == 0 and not serving.done():
        await asyncio.sleep(0.001)
    broadcaster.publish(frame(1))
    async with asyncio.timeout(5):
        await serving


@pytest.mark.parametrize("gone", [ClientDisconnected, ConnectionResetError, BrokenPipeError],
                         ids=lambda exc: exc.__name__)
def test_a_client_that_left_ends_its_stream_as_client_closed(gone: type[OSError]) -> None:
    # what a server raises when the peer has gone (uvicorn: ClientDisconnected); Starlette turns it into
    # WebSocketDisconnect(1006), which the writer takes for a departure
    before = disconnects("client_closed")
    asyncio.run(serve_one_frame(FakeServer(fail=gone)))
    assert disconnects("client_closed") == before + 1


@pytest.mark.parametrize("where", ["send", "receive"])
def test_a_runtime_error_from_the_socket_is_a_bug_not_a_departure(where: str) -> None:
    def misuse() -> RuntimeError:
        return RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")

    server = FakeServer(fail=misuse) if where == "send" else FakeServer(fail_receive=misuse)
    before = disconnects("client_closed")
    with pytest.raises(RuntimeError, match="Unexpected ASGI message"):
        asyncio.run(serve_one_frame(server))
    assert disconnects("client_closed") == before


@pytest.mark.parametrize("leaves", [False, True], ids=["stays", "leaves-while-closed"])
def test_a_stalled_client_is_closed_with_1013_even_if_it_leaves_meanwhile(leaves: bool) -> None:
    server = FakeServer(stall=True, fail_close=ClientDisconnected if leaves else None)
    before = disconnects("send_timeout")
    asyncio.run(serve_one_frame(server, send_timeout=0.05))
    assert disconnects("send_timeout") == before + 1
    closes = [m for m in server.sent if m["type"] == "websocket.close"]
    said = "client accepted nothing for 0.05s; closing slow client"
    assert closes == ([] if leaves else [{"type": "websocket.close", "code": 1013, "reason": said}])
