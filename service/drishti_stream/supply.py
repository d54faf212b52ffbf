"""Encoded frames by source index: from the frame store when there is one, encoded ahead of the clock on
every core while it is being filled, encoded on demand when there is none.

What is kept per source frame is its message tail (`protocol.message_tail`): the JPEG in base64 and the
message's end, the same for every frame id that shows it.

A camera is in one of four states, reported by `state`:
- `complete`: it serves a finished store; its source is closed, nothing is decoded or encoded any more;
- `filling`: it holds the store's writer lock and fills it in a background pass that encodes on every core
  (OpenCV releases the GIL) and stays ahead of the clock: it goes on from the frame the clock showed when
  it took the lock, and one that falls more than half a second behind (a busy machine) skips ahead rather
  than encode frames whose time has passed (none a follower may still be waiting for); those are filled
  when the pass wraps around;
- `following`: another camera (a replica on the same volume) fills the store; frames are read from it as
  they appear, and a frame that has not appeared half a second after its due time is encoded here, for this
  camera only; when the writer finishes (or dies) the camera takes the store over;
- `off`: no store (disabled, no usable cache directory, or a video too large for its budget): every frame
  is encoded when it is needed, on every loop.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from opentelemetry import trace

from drishti_stream import protocol, telemetry
from drishti_stream.sources import FrameSource
from drishti_stream.store import FORMAT_VERSION, FrameStore, StoreInvalid, WriterLock
from drishti_stream.wire import FileRange

log = logging.getLogger(__name__)

Tail = tuple[bytes, FileRange | None]  # a message tail, and where it lies in the store's file


class FillClock(Protocol):
    """What a first pass needs of the camera's clock."""

    def frame_id_ago(self, seconds: float) -> int:
        """The frame id the clock showed `seconds` ago."""

    def source_index(self, frame_id: int) -> int:
        """The source frame that frame id shows."""


FOLLOW_POLL_S = 0.002
FOLLOW_GRACE_S = 0.5  # how long past its due time a follower waits for the writer's frame


class SupplyClosed(Exception):
    """Asked for a frame after `close`: the camera is stopping."""


def encoder(size: tuple[int, int], quality: int) -> Callable[[np.ndarray], bytes]:
    """Source image -> JPEG at the output size (area-averaged when scaled down)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]

    def encode(image: np.ndarray) -> bytes:
        if (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, buffer = cv2.imencode(".jpg", image, params)
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buffer.tobytes()

    return encode


def store_key(source: FrameSource, size: tuple[int, int], quality: int) -> bytes | None:
    """A digest of everything that determines a store's bytes: the format, the source's identity, the output
    size and quality, and the encoder. None for a source that cannot say what it is."""
    if source.identity is None:
        return None
    determinants = [FORMAT_VERSION, source.identity, source.length, list(size), quality, cv2.__version__]
    return hashlib.sha256(json.dumps(determinants).encode()).digest()


def encoder_threads() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    return max(1, len(os.sched_getaffinity(0)))


class FrameSupply:
    """Message tails by source index, for the camera's producer and for `GET /frames/{id}.jpg`."""

    def __init__(self, source: FrameSource, size: tuple[int, int], quality: int, store_dir: Path | None,
                 budget_bytes: int, clock: FillClock) -> None:
        self.source = source
        self._encode = encoder(size, quality)
        self._key = store_key(source, size, quality) if store_dir is not None and budget_bytes else None
        self._budget = budget_bytes
        self._clock = clock
        self._source_lock = threading.Lock()  # the decoder is not thread-safe
        self._source_open = True
        self._swap = threading.RLock()  # a store is not closed while a frame is read from it
        self._written = threading.Condition()
        self._error: BaseException | None = None
        self._lock: WriterLock | None = None
        self._closed = False
        self.store: FrameStore | None = None
        self.path = store_dir / f"{self._key.hex()[:32]}.frames" if store_dir and self._key else None
        self.state = "off"
        self._threads: list[threading.Thread] = []
        if self.path is not None:
            self._open_store()

    # --- reading ------------------------------------------------------------------------------------------

    def get(self, index: int, due: float) -> Tail:
        """Frame `index`'s message tail. A frame being filled here is waited for; one filled elsewhere is
        waited for until shortly after `due` (wall clock), then encoded here."""
        if self._closed:
            raise SupplyClosed()
        tail = self._stored(index)
        if tail is not None:
            return tail
        if self.state == "filling":
            return self._wait_for_fill(index, due)
        if self.state == "following":
            deadline = due + FOLLOW_GRACE_S
            while self.state == "following" and time.time() < deadline:
                time.sleep(FOLLOW_POLL_S)
                if self.store is None:
                    self._find_writers_store()
                tail = self._stored(index)
                if tail is not None:
                    return tail
            if self.state != "following":
                return self.get(index, due)
        return self._encode_here(index), None

    def _stored(self, index: int) -> Tail | None:
        with self._swap:
            store = self.store
            found = store.get(index) if store is not None else None
            if store is None or found is None:
                return None
            data, offset = found
            return data, FileRange(store.file, offset, len(data))

    def _wait_for_fill(self, index: int, due: float) -> Tail:
        with self._written:
            while self.state == "filling" and not self._closed:
                tail = self._stored(index)
                if tail is not None:
                    return tail
                if self._error is not None:
                    raise self._error
                self._written.wait(0.5)
        return self.get(index, due)

    def _find_writers_store(self) -> None:
        """A follower that started before the writer renamed its file in looks for it again."""
        assert self.path is not None and self._key is not None
        try:
            store = FrameStore.open(self.path, self._key, self.source.length)
        except (OSError, StoreInvalid):
            return
        with self._swap:
            if self.state == "following" and self.store is None:
                self._serve(store)
            else:
                store.close()

    def _encode_here(self, index: int) -> bytes:
        return self._encoded(index, self._read(index))

    def _read(self, index: int) -> np.ndarray:
        with self._source_lock, telemetry.tracer.start_as_current_span("frame.read") as span:
            span.set_attribute("drishti.source_index", index)
            return self.source.read(index)

    def _encoded(self, index: int, image: np.ndarray) -> bytes:
        with telemetry.tracer.start_as_current_span("frame.encode") as span:
            span.set_attribute("drishti.source_index", index)
            telemetry.FRAMES_ENCODED.inc()
            return protocol.message_tail(binascii.b2a_base64(self._encode(image), newline=False))

    # --- the store's life ---------------------------------------------------------------------------------

    def _open_store(self) -> None:
        assert self.path is not None and self._key is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(self.path)
        except OSError as exc:
            log.warning("frame store off: cannot use %s (%s); every loop encodes again", self.path.parent,
                        exc.strerror)
            return
        if self._lock.acquire(wait=False):
            self._take_over()
            return
        self.state = "following"
        self._find_writers_store()
        self._start(self._wait_for_writer, "frame-store-follower")

    def _wait_for_writer(self) -> None:
        """Follows another camera's fill until its writer lock is free: then the store is complete, or the
        writer died and this camera fills it."""
        assert self._lock is not None
        self._lock.acquire(wait=True)
        if self._closed:
            self._release_lock()
        else:
            self._take_over()

    def _take_over(self) -> None:
        """With the writer lock held: serve the complete store if there is one, else fill a new one."""
        assert self.path is not None and self._key is not None
        # A fill starts at the frame the clock showed when the lock was taken: a camera that found the lock
        # taken wants no earlier frame first, so it finds it in the file rather than encode it itself.
        start = self._clock.frame_id_ago(0.0)
        try:
            store = FrameStore.open(self.path, self._key, self.source.length)
        except FileNotFoundError:
            store = None
        except (OSError, StoreInvalid) as exc:
            log.warning("frame store %s not served (%s); rebuilding it", self.path, exc)
            store = None
        if store is not None and store.complete:
            self._serve(store)
            self._release_lock()
            return
        if store is not None:
            log.warning("frame store %s was left partial by a writer that stopped; rebuilding it", self.path)
            store.close()
        try:
            store = FrameStore.create(self.path, self._key, self.source.length, self._budget)
        except OSError as exc:
            log.warning("frame store off: cannot write %s (%s); every loop encodes again", self.path,
                        exc.strerror)
            self._serve(None, "off")
            self._release_lock()
            return
        self._serve(store, "filling")
        self._start(lambda: self._fill(start), "frame-store-fill")

    def _serve(self, store: FrameStore | None, state: str | None = None) -> None:
        with self._swap:
            previous, self.store = self.store, store
            self.state = state or ("complete" if store is not None and store.complete else "following")
            if previous is not None and previous is not store:
                previous.close()
        telemetry.FRAME_STORE_BYTES.set(store.size if store is not None else 0)
        if self.state == "complete":
            log.info("frame store %s: %d frames, nothing more to encode", self.path, self.source.length)
            self._close_source()  # its decoder's memory is not needed any more

    def _fill(self, start: int) -> None:
        """The first pass: decodes here, encodes on every core, writes each frame as it is ready, and
        finishes the store when all are written."""
        store = self.store
        assert store is not None and self._key is not None
        started = time.monotonic()
        taken = bytearray(store.count)
        workers = encoder_threads()
        in_flight = threading.BoundedSemaphore(workers * 2)
        full = threading.Event()
        # one trace for the whole pass: its reads and encodes are its children, on whichever thread
        fill_span = telemetry.tracer.start_span("frame_store.fill",
                                                attributes={"drishti.frames": store.count})

        def encode_and_put(index: int, image: np.ndarray) -> None:
            try:
                with trace.use_span(fill_span):
                    tail = self._encoded(index, image)
                if not store.put(index, tail):
                    full.set()
                telemetry.FRAME_STORE_BYTES.set(store.size)
            except Exception as exc:  # the producer waiting for this frame raises it
                self._error = exc
            finally:
                in_flight.release()
                with self._written:
                    self._written.notify_all()

        try:
            with ThreadPoolExecutor(workers, thread_name_prefix="encode") as pool:
                position = start  # the frame id whose source frame is wanted next
                for _ in range(store.count):
                    if full.is_set() or self._closed or self._error is not None:
                        break
                    position = max(position, self._clock.frame_id_ago(FOLLOW_GRACE_S))
                    index = _first_not_taken(taken, self._clock.source_index(position))
                    position += 1
                    taken[index] = 1
                    with trace.use_span(fill_span):
                        image = self._read(index)
                    in_flight.acquire()
                    pool.submit(encode_and_put, index, image)
            if self._closed or self._error is not None:
                return
            if full.is_set():
                log.warning("frame store off: this video's frames exceed cache.budget_mb (%d MB); every loop "
                            "encodes again", self._budget >> 20)
                store.path.unlink(missing_ok=True)
                self._serve(None, "off")
                return
            store.finish(self._key)
            log.info("frame store %s: %d frames, %d bytes, encoded in %.1f s on %d threads", store.path,
                     store.count, store.size, time.monotonic() - started, workers)
            self._serve(store)
        except Exception as exc:  # a frame that cannot be decoded: the producer waiting for it raises it
            self._error = exc
        finally:
            fill_span.end()
            self._release_lock()
            with self._written:
                self._written.notify_all()

    # --- plumbing -----------------------------------------------------------------------------------------

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def close(self) -> None:
        """Stops a fill (after the frame being read), then releases the store and the source."""
        self._closed = True
        for thread in self._threads:
            if thread.name != "frame-store-follower":
                thread.join()
        self._release_lock()
        self._serve(None, "off")
        self._close_source()

    def _close_source(self) -> None:
        with self._source_lock:
            if self._source_open:
                self._source_open = False
                self.source.close()


def _first_not_taken(taken: bytearray, start: int) -> int:
    """The first index not yet taken from `start` on, wrapping around to the beginning."""
    try:
        return taken.index(0, start)
    except ValueError:
        return taken.index(0)
