"""Protocol v1.0: the one message a camera sends per frame, and its JSON Schema."""

from __future__ import annotations

import binascii
import json
from functools import cache
from importlib.resources import files
from typing import Any

SOURCE = "DrishtiStream"
VERSION = "v1.0"
TAIL_END = b'"}'  # closes the image's string and the message


def message_head(frame_id: int, timestamp: float, fps: int) -> bytes:
    """The JSON text (UTF-8) of one frame's v1.0 message, exactly its six fields, up to its image: what
    changes from frame id to frame id.

    The base64 image needs no JSON escaping, so it is spliced in rather than scanned by the encoder,
    which would otherwise spend most of the frame's serialization time on it.
    """
    head = json.dumps(
        {"source": SOURCE, "version": VERSION, "frame_id": frame_id, "timestamp": timestamp, "fps": fps},
        separators=(",", ":"),
    )
    return head[:-1].encode() + b',"image":"'


def message_tail(image_b64: bytes) -> bytes:
    """A message from its image on: the same for a source frame whatever its frame id (the frame store
    keeps it)."""
    return image_b64 + TAIL_END


def tail_jpeg(tail: bytes) -> bytes:
    """The JPEG a message tail carries."""
    return binascii.a2b_base64(memoryview(tail)[:-len(TAIL_END)])



def with_meta(message: bytes, meta: dict[str, Any]) -> bytes:
    """The message with the extended metadata a client asked for, as a seventh field after the image."""
    return b"".join((message[:-1], b',"meta":', json.dumps(meta, separators=(",", ":")).encode(), b"}"))


@cache
def message_schema(meta: bool = False) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a v1.0 message, shipped with the package; with `meta`, of the
    message with extended metadata."""
    schema: dict[str, Any] = json.loads(files(__package__).joinpath("frame.schema.json").read_text())
    if meta:
        schema["properties"]["meta"] = {"$ref": "#/$defs/meta"}
        schema["required"].append("meta")
    return schema
