"""What the camera hands the server for one client and one frame: a complete WebSocket frame, and where its
tail lies in the frame store's file, so the server can send that part from the page cache (sendfile) rather
than copy it from Python into the kernel once per client."""

from __future__ import annotations

from dataclasses import dataclass, field

from websockets.frames import Frame as WebSocketFrame
from websockets.frames import Opcode

from drishti_stream.store import StoreFile


@dataclass(frozen=True, slots=True)
class FileRange:
    """`length` bytes of an open file at `offset`; holding it keeps the file open."""

    file: StoreFile
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Wire:
    """A complete, unmasked WebSocket frame. When `from_file` is set, the last `from_file.length` bytes of
    `data` are also those bytes of that file."""

    data: bytes = field(repr=False)
    from_file: FileRange | None = None


def text_frame(message: bytes, from_file: FileRange | None = None) -> Wire:
    """A text message as the frame the server writes to each socket; `from_file` holds the message's tail."""
    return Wire(WebSocketFrame(Opcode.TEXT, message).serialize(mask=False), from_file)
