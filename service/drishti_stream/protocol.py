"""Protocol v1.0: the one message a camera sends per frame, and its JSON Schema."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

SOURCE = "DrishtiStream"
VERSION = "v1.0"


def frame_message(frame_id: int, timestamp: float, fps: int, image_b64: bytes) -> bytes:
    """The JSON text (UTF-8) of one frame: exactly the six fields of the v1.0 contract; `image_b64` is the
    JPEG in base64, as the frame store keeps it.

    The base64 image needs no JSON escaping, so it is spliced in rather than scanned by the encoder,
    which would otherwise spend most of the frame's serialization time on it.
    """
    head = json.dumps(
        {"source": SOURCE, "version": VERSION, "frame_id": frame_id, "timestamp": timestamp, "fps": fps},
        separators=(",", ":"),
    )
    return b"".join((head[:-1].encode(), b',"image":"', image_b64, b'"}'))


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
