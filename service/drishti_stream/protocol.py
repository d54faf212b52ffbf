"""Protocol v1.0: the one message a camera sends per frame, and its JSON Schema."""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib.resources import files
from typing import Any

SOURCE = "DrishtiStream"
VERSION = "v1.0"


def frame_message(frame_id: int, timestamp: float, fps: int, jpeg: bytes) -> str:
    """The JSON text of one frame: exactly the six fields of the v1.0 contract.

    The base64 image needs no JSON escaping, so it is spliced in rather than scanned by the encoder,
    which would otherwise spend most of the frame's serialization time on it.
    """
    head = json.dumps(
        {"source": SOURCE, "version": VERSION, "frame_id": frame_id, "timestamp": timestamp, "fps": fps},
        separators=(",", ":"),
    )
    return f'{head[:-1]},"image":"{base64.b64encode(jpeg).decode("ascii")}"}}'



@cache
def message_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a v1.0 message, shipped with the package."""
    return json.loads(files(__package__).joinpath("frame.schema.json").read_text())
