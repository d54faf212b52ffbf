"""Fan-out: every client has a latest-frame slot and its own writer, so no client waits for another.

Publishing a frame only fills slots (no I/O). A client that cannot keep up finds its slot overwritten and
loses the older frame (counted); one that accepts nothing for `send_timeout` seconds is to be closed.
A client may ask for a lower rate than the camera's (`?fps=N`): its slot is then offered only the frames on
its own clock; and for extended metadata (`?meta=1`): it then gets the frames' second, extended message.

This is the policy only, free of sockets: the server's side of a WebSocket client is in `wsstream`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager

from drishti_stream import telemetry
from drishti_stream.camera import Frame
from drishti_stream.wire import Wire

WriteNow = Callable[[Wire], bool]


class ClientRate:
    """A client's own, lower rate: of the camera's frames, the first at or after each of the client's
    deadlines (epoch + s / fps), so every client asking for the same rate gets the same frame ids, whenever
    it joined."""

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
            raise ValueError(
                f"fps must be an integer from 1 to {camera_fps} (the camera's rate), got {_quoted(value)}")
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

    def offer(self, frame: Frame) -> bool:
        """Hands the frame to the client; True when it went to its socket at once."""
        if self._rate is not None and not self._rate.admits(frame.frame_id):
            return False
        payload = frame.payload(self.meta)
        if payload is None:  # produced before the client asked for metadata
            return False
        write_now = self._write_now
        idle = not self._writing and self._pending is None
        if write_now is not None and idle and write_now(payload[1]):
            return True
        if self._pending is not None:
            self.dropped += 1
            telemetry.FRAMES_DROPPED.labels(self.name).inc()
        self._pending = frame
        self._ready.set()
        return False

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
        """Offers the frame to every client; the send lag is observed once for all those written at once
        (as the last of them was), not once per client: the fan-out's cost per client stays one write."""
        written = False
        for subscriber in self._subscribers:
            written |= subscriber.offer(frame)
        if written:
            telemetry.SEND_LAG_SECONDS.observe(time.time() - frame.timestamp)

    @contextmanager
    def subscribe(self, name: str, kind: str, write_now: WriteNow | None = None,
                  rate: ClientRate | None = None, meta: bool = False) -> Iterator[Subscriber]:
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
    """A client's value, quoted, short and ASCII: it goes back in a close reason (at most 123 bytes)."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
