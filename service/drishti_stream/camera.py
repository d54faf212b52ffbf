"""The camera: produces each frame once, off the event loop, on the frame clock.

Producing a frame means: pick the source frame for the frame id, take its encoding from the frame supply
(the frame store, or an encoder), and assemble the v1.0 message and its WebSocket frame, once for every
client (and, while a client asks for it, once more with extended metadata).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from drishti_stream import protocol, store, telemetry
from drishti_stream.clock import FrameClock, source_index
from drishti_stream.protocol import message_head, tail_jpeg
from drishti_stream.settings import Settings
from drishti_stream.sources import FrameSource
from drishti_stream.supply import FrameSupply
from drishti_stream.wire import Wire, text_frame

log = logging.getLogger(__name__)

# What consumers built on `websockets` accept by default; larger messages are refused by them.
CLIENT_MAX_MESSAGE_BYTES = 1 << 20
MAX_FPS = 120


@dataclass(frozen=True, slots=True)
class Frame:
    """One produced frame: its v1.0 message, and that message framed for the WebSocket wire; the `meta_`
    pair is the message with extended metadata, produced only while some client asks for it."""

    frame_id: int
    timestamp: float
    source_index: int
    tail: bytes = field(repr=False)  # the message from its image on; a repr in a log line never shows it
    message: str = field(repr=False)
    wire: Wire = field(repr=False)
    meta_message: str | None = field(default=None, repr=False)
    meta_wire: Wire | None = field(default=None, repr=False)
    _jpeg: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def jpeg(self) -> bytes:
        """The JPEG itself, decoded once, when an MJPEG client or an endpoint first asks for it."""
        if self._jpeg is None:
            object.__setattr__(self, "_jpeg", tail_jpeg(self.tail))  # a memo, not a change
        assert self._jpeg is not None
        return self._jpeg

    def payload(self, meta: bool) -> tuple[str, Wire] | None:
        """A client's message for this frame and its wire bytes; None when it asks for metadata the frame
        lacks."""
        if not meta:
            return self.message, self.wire
        if self.meta_message is None or self.meta_wire is None:
            return None
        return self.meta_message, self.meta_wire


def output_size(width: int, height: int, max_width: int | None, max_height: int | None) -> tuple[int, int]:
    """The frame size after the optional limits, keeping the aspect ratio (and even dimensions)."""
    scale = min(1.0, (max_width or width) / width, (max_height or height) / height)
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def output_fps(configured: int | None, source: FrameSource) -> int:
    """The declared rate: the configured one, else the source's native rate rounded into 1..120."""
    return configured or min(MAX_FPS, max(1, round(source.native_fps)))


class Camera:
    """Turns frame ids into frames. `produce` runs in the camera's one worker thread, never on the loop."""

    def __init__(self, settings: Settings, source: FrameSource, now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.source = source
        self.fps = output_fps(settings.fps, source)
        self.clock = FrameClock(settings.epoch or now(), self.fps)
        self.size = output_size(source.width, source.height, settings.max_width, settings.max_height)
        self._now = now
        self.supply = FrameSupply(source, self.size, settings.jpeg_quality,
                                  settings.cache_dir / store.DIRECTORY if settings.cache_budget_mb else None,
                                  settings.cache_budget_mb << 20, self)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camera")
        self.latest: Frame | None = None
        self.produced = 0
        self.skipped = 0

    def source_index(self, frame_id: int) -> int:
        """The source frame that frame `frame_id` shows."""
        source = self.source
        return source_index(frame_id, self.fps, source.native_fps, source.length, self.settings.loop)

    def frame_id_ago(self, seconds: float) -> int:
        """The frame id the clock showed `seconds` ago (where a first pass over the video goes next)."""
        return self.clock.latest_due(self._now() - seconds)

    def jpeg(self, frame_id: int) -> bytes:
        """The exact JPEG that frame `frame_id` carries (or carried), for `GET /frames/{id}.jpg`."""
        tail, _ = self.supply.get(self.source_index(frame_id), self.clock.due(frame_id))
        return tail_jpeg(tail)

    def produce(self, frame_id: int, with_meta: bool = False) -> Frame:
        """Builds frame `frame_id`: a pure function of the source and the id."""
        index = self.source_index(frame_id)
        with telemetry.ENCODE_SECONDS.time(), telemetry.tracer.start_as_current_span("frame.produce") as span:
            span.set_attribute("drishti.frame_id", frame_id)
            timestamp = self.clock.due(frame_id)
            tail, stored = self.supply.get(index, timestamp)
            message = message_head(frame_id, timestamp, self.fps) + tail
            meta_message = self.meta_message(message, index) if with_meta else None
        return Frame(frame_id, timestamp, index, tail, message.decode("ascii"), text_frame(message, stored),
                     meta_message.decode("ascii") if meta_message else None,
                     text_frame(meta_message) if meta_message else None)

    def meta_message(self, message: bytes, index: int) -> bytes:
        width, height = self.size
        return protocol.with_meta(message, {"name": self.settings.name, "source_index": index, "width": width,
                                            "height": height, "epoch": self.clock.epoch})

    def check_message_size(self) -> int:
        """Produces the frame due now and warns when a message would exceed what default consumers accept."""
        size = len(self.produce(self.clock.latest_due(self._now())).message)
        if size > CLIENT_MAX_MESSAGE_BYTES:
            log.warning(
                "frame messages are about %d bytes, over the 1 MiB that websockets clients accept by default;"
                " lower video.jpeg_quality or set video.max_width / video.max_height",
                size,
            )
        return size

    async def run(self, publish: Callable[[Frame], None], wants_meta: Callable[[], bool]) -> None:
        """Publishes frame after frame at its due time, forever; skips ids rather than drift when late."""
        loop = asyncio.get_running_loop()
        frame_id = self.clock.latest_due(self._now())
        while True:
            frame = await loop.run_in_executor(self._worker, self.produce, frame_id, wants_meta())
            delay = frame.timestamp - self._now()
            if delay > 0:
                await asyncio.sleep(delay)
            self.latest = frame
            with telemetry.tracer.start_as_current_span("frame.fanout"):
                publish(frame)
            telemetry.FRAMES_PRODUCED.inc()
            self.produced += 1
            next_id = frame_id + 1
            due_now = self.clock.latest_due(self._now())
            if due_now > next_id:
                telemetry.FRAMES_SKIPPED.inc(due_now - next_id)
                self.skipped += due_now - next_id
                next_id = due_now
            frame_id = next_id

    def close(self) -> None:
        self.supply.close()
        self._worker.shutdown(wait=True, cancel_futures=True)
