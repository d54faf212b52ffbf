"""The frame store: a source's frames, encoded once, in one file under `cache.dir`, for every later loop,
restart and replica that shares the directory.

A store holds each source frame's bytes as the camera serves them (its message tail: the JPEG in base64
and the message's end), so a message is assembled without encoding anything. Its name is a digest of
everything that determines those bytes. Layout: a header, one index entry (offset, length, CRC-32) per
source frame, then the data.

Writing is guarded by an exclusive `flock` on a lock file beside the store, held for the whole fill: a
camera that cannot take it serves from the file while another one fills it. A writer always starts from a
fresh file renamed into place, so nobody's mapping is ever truncated under it; a finished store is marked
complete, fsynced and never written again. A store that is partial with no writer left, fails a check, or
comes from another format version is never served: it is rebuilt.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import zlib
from pathlib import Path

DIRECTORY = "frames"  # under cache.dir
MAGIC = b"DRISHTI FRAMES\n\0"
FORMAT_VERSION = 1
HEADER = struct.Struct("<16sIIIQ32s")  # magic, format version, state, frame count, end of data, key digest
ENTRY = struct.Struct("<QII")  # offset, length (0: not written yet), CRC-32
FILLING, COMPLETE = 1, 2
PAGE = mmap.PAGESIZE


class StoreFile:
    """An open store file, closed when nothing refers to it any more: a frame on its way to a socket may
    still send from a store that has been replaced meanwhile."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        os.close(self.fd)


class StoreInvalid(Exception):
    """A store file that must not be served; the message says why, for the log."""


def data_start(count: int) -> int:
    """Where the frames begin: after the header and the index, on a page boundary."""
    return -(-(HEADER.size + count * ENTRY.size) // PAGE) * PAGE


class FrameStore:
    """One store file, memory-mapped for reading. `get` is safe while another process is still writing it."""

    def __init__(self, path: Path, fd: int, count: int, state: int) -> None:
        self.path = path
        self.count = count
        self.state = state
        self._map = mmap.mmap(fd, os.fstat(fd).st_size, prot=mmap.PROT_READ)
        self.file = StoreFile(fd)  # from here on the fd is the file's to close
        self._end = data_start(count)  # the writer's next offset
        self._append = threading.Lock()

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def size(self) -> int:
        """Bytes of frames written."""
        return self._end - data_start(self.count)

    @classmethod
    def create(cls, path: Path, key: bytes, count: int, capacity: int) -> FrameStore:
        """A new, empty store renamed over `path` (whatever was there stays intact for those mapping it)."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_native_id()}")
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, data_start(count) + capacity)  # sparse: takes disk only as frames are written
            os.pwrite(fd, HEADER.pack(MAGIC, FORMAT_VERSION, FILLING, count, 0, key), 0)
            os.replace(temporary, path)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        return cls(path, fd, count, FILLING)

    @classmethod
    def open(cls, path: Path, key: bytes, count: int) -> FrameStore:
        """An existing store for `key`: complete and checked frame by frame, or being filled by another
        camera. Raises StoreInvalid (or OSError: no such file) otherwise."""
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            if size < HEADER.size:
                raise StoreInvalid(f"{size} bytes, shorter than its header")
            magic, version, state, stored_count, end, stored_key = HEADER.unpack(os.pread(fd, HEADER.size, 0))
            if magic != MAGIC or version != FORMAT_VERSION:
                raise StoreInvalid(f"not a version {FORMAT_VERSION} frame store")
            if stored_key != key or stored_count != count:
                raise StoreInvalid("made for another source or output")
            if state not in (FILLING, COMPLETE) or (state == COMPLETE and end != size):
                raise StoreInvalid(f"state {state} with {size} bytes of {end}")
            store = cls(path, fd, count, state)
        except BaseException:
            os.close(fd)
            raise
        if store.complete:
            store._verify()
        return store

    def _verify(self) -> None:
        """Checks every frame of a complete store against its index and CRC; one bad frame voids it."""
        first = data_start(self.count)
        for index in range(self.count):
            offset, length, crc = ENTRY.unpack_from(self._map, HEADER.size + index * ENTRY.size)
            if not (length and first <= offset and offset + length <= len(self._map)):
                self.close()
                raise StoreInvalid(f"frame {index} is missing or out of bounds")
            with memoryview(self._map) as whole:
                intact = zlib.crc32(whole[offset:offset + length]) == crc
            if not intact:
                self.close()
                raise StoreInvalid(f"frame {index} fails its CRC check")
        self._end = len(self._map)

    def get(self, index: int) -> tuple[bytes, int] | None:
        """Frame `index`'s bytes and their offset in the file, or None while they are not written (or not
        intact) yet."""
        offset, length, crc = ENTRY.unpack_from(self._map, HEADER.size + index * ENTRY.size)
        if not length:
            return None
        data = self._map[offset:offset + length]
        if self.state != COMPLETE and zlib.crc32(data) != crc:
            return None
        return data, offset

    def put(self, index: int, data: bytes) -> bool:
        """Writes one frame (the writer only): the data, then its index entry, so a reader never sees an
        entry before its data. False when the store's capacity is exhausted."""
        with self._append:
            offset = self._end
            if offset + len(data) > len(self._map):
                return False
            self._end += len(data)
        fd = self.file.fd
        os.pwrite(fd, data, offset)
        os.pwrite(fd, ENTRY.pack(offset, len(data), zlib.crc32(data)), HEADER.size + index * ENTRY.size)
        return True

    def finish(self, key: bytes) -> None:
        """Marks a fully written store complete, durably; it is never written again."""
        os.ftruncate(self.file.fd, self._end)
        os.fsync(self.file.fd)
        os.pwrite(self.file.fd, HEADER.pack(MAGIC, FORMAT_VERSION, COMPLETE, self.count, self._end, key), 0)
        os.fsync(self.file.fd)
        self.state = COMPLETE

    def close(self) -> None:
        """Unmaps the file; the file itself closes with the last frame that refers to it."""
        self._map.close()


class WriterLock:
    """The exclusive right to fill a store: an `flock` on a lock file beside it, released by the kernel if
    the holder dies, so a crashed writer never blocks the others."""

    def __init__(self, store_path: Path) -> None:
        self._fd = os.open(store_path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self, wait: bool) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        os.close(self._fd)  # releases the lock
