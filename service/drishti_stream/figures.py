"""`/metrics` as JSON, for clients that ask for `application/json`.

The earlier camera's `/metrics` was this JSON document, and dashboards poll it by these field names;
Prometheus text stays the default, as the ecosystem expects. Both carry the same counters.
"""

from __future__ import annotations

import mimeparse
from pydantic import BaseModel, Field

from drishti_stream import protocol
from drishti_stream.broadcast import Broadcaster
from drishti_stream.camera import Camera

JSON = "application/json"
PROMETHEUS_TEXT = "text/plain"


class Video(BaseModel):
    path: str = Field(description="The source, as configured (video.path).")
    width: int = Field(description="Width of the source video, in pixels.")
    height: int = Field(description="Height of the source video, in pixels.")
    native_fps: float = Field(description="The source's own frame rate.")
    total_frames: int = Field(description="Frames in the source video.")
    current_frame: int | None = Field(description="Source frame of the newest frame sent; null before one.")
    loop: bool = Field(description="Whether the video loops (video.loop).")


class Scheduler(BaseModel):
    fps: int = Field(description="The output rate: frame ids per second.")
    epoch: float = Field(description="Unix time of frame 0.")
    frame_id: int | None = Field(description="Id of the newest frame sent; null before the first.")
    frames_produced: int = Field(description="Frames produced since start (drishti_frames_produced_total).")
    frames_skipped: int = Field(description="Ids skipped to keep time (drishti_frames_skipped_total).")


class Figures(BaseModel):
    """The camera's figures under the earlier camera's field names."""

    service: str = Field(description=f"Always {protocol.SOURCE!r}.")
    version: str = Field(description="Protocol version of the stream.")
    connections: int = Field(description="Clients connected now (drishti_clients_connected, all kinds).")
    video: Video
    scheduler: Scheduler


def figures(camera: Camera, broadcaster: Broadcaster) -> Figures:
    source, latest = camera.source, camera.latest
    video = Video(path=source.name, width=source.width, height=source.height,
                  native_fps=float(source.native_fps), total_frames=source.length,
                  current_frame=latest.source_index if latest else None, loop=camera.settings.loop)
    scheduler = Scheduler(fps=camera.fps, epoch=camera.clock.epoch,
                          frame_id=latest.frame_id if latest else None,
                          frames_produced=camera.produced, frames_skipped=camera.skipped)
    return Figures(service=protocol.SOURCE, version=protocol.VERSION, connections=broadcaster.clients,
                   video=video, scheduler=scheduler)


def prefers_json(accept: str | None) -> bool:
    """True when the Accept header ranks `application/json` strictly above Prometheus text. A tie keeps the
    default, text: `*/*`, and `application/json, */*` as kubectl sends it; so does a header that does not
    parse."""
    try:
        return bool(accept) and mimeparse.quality(JSON, accept) > mimeparse.quality(PROMETHEUS_TEXT, accept)
    except mimeparse.MimeTypeParseException:
        return False
