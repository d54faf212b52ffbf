"""Fan-out: every client has a latest-frame slot and its own writer, so no client waits for another.

Publishing a frame only fills slots (no I/O). A client that cannot keep up finds its slot overwritten and
loses the older frame (counted); one that accepts nothing for `send_timeout` seconds is closed with 1013.
A client may ask for a lower rate than the camera's (`?fps=N`): its slot is then offered only the frames on its
own clock; and for extended metadata (`?meta=1`): it then gets the frames' second, extended message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager

from starlette.websockets import WebSocket, WebSocketDisconnect

from drishti_stream import telemetry
from drishti_stream.camera import Frame
from drishti_stream.wsprotocol import WIRE_KEY

log = logging.getLogger(__name__)

TRY_AGAIN_LATER = 1013  # RFC 6455 close code: the server is overloaded, or this client too slow
POLICY_VIOLATION = 1008  # RFC 6455 close code: the request is not one the server serves (a bad query parameter)


WriteNow = Callable[[bytes], bool]


class ClientRate:
    """A client's own, lower rate: of the camera's frames, the first at or after each of the client's deadlines
    (epoch + s / fps), so every client asking for the same rate gets the same frame ids, whenever it joined."""

    def __init__(self, fps: int, camera_fps: int) -> None:
        self.fps = fps
        self.camera_fps = camera_fps
        self._last_slot: int | None = None

    @classmethod
    def parse(cls, value: str | None, camera_fps: int) -> ClientRate | None:
        """The rate a client asked for (`?fps=N`); None for the camera's own. ValueError names the range."""
        if value is None:
            return None
        try:
            fps = int(value)
        except ValueError:
            fps = 0
        if not 1 <= fps <= camera_fps:
            raise ValueError(f"fps must be an integer from 1 to {camera_fps} (the camera's rate), got {_quoted(value)}")
        return None if fps == camera_fps else cls(fps, camera_fps)

    def admits(self, frame_id: int) -> bool:
        """Whether this frame is the client's next: the first one in a period of its clock not yet served."""
        slot = frame_id * self.fps // self.camera_fps
        if self._last_slot is None:  # joining: wait for the client's next deadline
            self._last_slot = (frame_id - 1) * self.fps // self.camera_fps
        if slot <= self._last_slot:
            return False
        self._last_slot = slot
        return True


class Subscriber:
    """One client's slot: holds at most the newest frame not yet taken by the client's writer.

    While the client keeps up, `write_now` (when the server offers it) hands the frame to its socket at
    once; the slot and the writer take over as soon as the socket is full.
    """

    def __init__(self, name: str, write_now: WriteNow | None = None, rate: ClientRate | None = None,
                 meta: bool = False) -> None:
        self.name = name
        self.meta = meta
        self.dropped = 0
        self._write_now = write_now
        self._rate = rate
        self._pending: Frame | None = None
        self._writing = False
        self._ready = asyncio.Event()

    def offer(self, frame: Frame) -> None:
        if self._rate is not None and not self._rate.admits(frame.frame_id):
            return
        payload = frame.payload(self.meta)
        if payload is None:  # produced before the client asked for metadata
            return
        idle = self._write_now is not None and not self._writing and self._pending is None
        if idle and self._write_now(payload[1]):
            telemetry.SEND_LAG_SECONDS.observe(time.time() - frame.timestamp)
            return
        if self._pending is not None:
            self.dropped += 1
            telemetry.FRAMES_DROPPED.labels(self.name).inc()
        self._pending = frame
        self._ready.set()

    async def next_frame(self) -> Frame:
        """Waits for the slot to fill. The writer holds the frame until it asks for the next one."""
        self._writing = False
        await self._ready.wait()
        self._ready.clear()
        frame, self._pending = self._pending, None
        assert frame is not None
        self._writing = True
        return frame


class Broadcaster:
    """The set of subscribers and the policy that protects them from each other."""

    def __init__(self, send_timeout: float, max_clients: int) -> None:
        self.send_timeout = send_timeout
        self.max_clients = max_clients
        self._subscribers: dict[Subscriber, str] = {}
        self._meta_subscribers = 0

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def wants_meta(self) -> bool:
        """Whether frames must be produced with extended metadata too: some client asked for it."""
        return self._meta_subscribers > 0

    def publish(self, frame: Frame) -> None:
        for subscriber in self._subscribers:
            subscriber.offer(frame)

    @contextmanager
    def subscribe(self, name: str, kind: str, write_now: WriteNow | None = None, rate: ClientRate | None = None,
                  meta: bool = False) -> Iterator[Subscriber]:
        subscriber = Subscriber(name, write_now, rate, meta)
        self._subscribers[subscriber] = kind
        self._meta_subscribers += meta
        telemetry.CLIENTS.labels(kind).inc()
        try:
            yield subscriber
        finally:
            del self._subscribers[subscriber]
            self._meta_subscribers -= meta
            telemetry.CLIENTS.labels(kind).dec()
            if subscriber.dropped:
                telemetry.FRAMES_DROPPED.remove(name)

    async def serve_websocket(self, websocket: WebSocket, camera_fps: int) -> None:
        """Streams frames to one WebSocket client until it leaves, stalls, or the server stops."""
        await websocket.accept()
        try:
            rate = ClientRate.parse(websocket.query_params.get("fps"), camera_fps)
            meta = wants_meta(websocket.query_params)
        except ValueError as exc:
            telemetry.DISCONNECTS.labels("bad_request").inc()
            await websocket.close(POLICY_VIOLATION, str(exc))
            return
        if self.clients >= self.max_clients:
            telemetry.DISCONNECTS.labels("refused").inc()
            await websocket.close(TRY_AGAIN_LATER, f"camera is at its limit of {self.max_clients} clients")
            return
        client = websocket.client
        name = f"{client.host}:{client.port}" if client else "unknown"
        write_now = websocket.scope.get("extensions", {}).get(WIRE_KEY, {}).get("write_now")
        with self.subscribe(name, "websocket", write_now, rate, meta) as subscriber:
            writer = asyncio.create_task(self._write(websocket, subscriber))
            reader = asyncio.create_task(_drain_incoming(websocket))
            done, pending = await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            reason = writer.result() if writer in done and not writer.cancelled() else "client_closed"
        telemetry.DISCONNECTS.labels(reason).inc()
        log.info("client %s left (%s) after dropping %d frames", name, reason, subscriber.dropped)

    async def _write(self, websocket: WebSocket, subscriber: Subscriber) -> str:
        """The client's writer: sends the slot's frame as soon as the socket has room. Returns why it ended."""
        while True:
            frame = await subscriber.next_frame()
            payload = frame.payload(subscriber.meta)
            assert payload is not None, "offer() fills the slot only with frames that have the client's message"
            text, wire = payload
            try:
                async with asyncio.timeout(self.send_timeout):
                    await websocket.send({"type": "websocket.send", "text": text, WIRE_KEY: wire})
            except TimeoutError:
                await websocket.close(
                    TRY_AGAIN_LATER, f"client accepted nothing for {self.send_timeout:g}s; closing slow client"
                )
                return "send_timeout"
            except (WebSocketDisconnect, RuntimeError, OSError):
                return "client_closed"
            telemetry.SEND_LAG_SECONDS.observe(time.time() - frame.timestamp)

    async def frames(self, name: str, kind: str, rate: ClientRate | None = None) -> AsyncIterator[Frame]:
        """Newest frames for a non-WebSocket consumer (MJPEG), with the same slot policy."""
        with self.subscribe(name, kind, rate=rate) as subscriber:
            while True:
                yield await subscriber.next_frame()


def wants_meta(query: Mapping[str, str]) -> bool:
    """Whether a client asked for extended metadata (`?meta=1`). ValueError names the allowed values."""
    value = query.get("meta", "0")
    if value not in ("0", "1"):
        raise ValueError(f"meta must be 0 or 1 (1: extended metadata in every message), got {_quoted(value)}")
    return value == "1"


def _quoted(value: str, limit: int = 24) -> str:
    """A client's value, quoted, short and ASCII: it goes back in a close reason, which holds at most 123 bytes."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


async def _drain_incoming(websocket: WebSocket) -> None:
    """Reads (and ignores) what the client sends, so its close and pings are seen promptly."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
