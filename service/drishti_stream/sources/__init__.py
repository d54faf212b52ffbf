"""Frame sources behind one small interface, and the factory that picks one from a video path."""

from __future__ import annotations

from pathlib import Path

from drishti_stream.settings import is_synthetic
from drishti_stream.sources.base import FrameSource, SourceError
from drishti_stream.sources.remote import fetch_gcs, fetch_http
from drishti_stream.sources.synthetic import SyntheticSource
from drishti_stream.sources.video import VideoFileSource

__all__ = ["FrameSource", "SourceError", "open_source"]


def open_source(path: str, cache_dir: Path, gcs_endpoint: str | None = None) -> FrameSource:
    """Opens the source named by `video.path`; raises SourceError with a one-line reason when it cannot."""
    if is_synthetic(path):
        return SyntheticSource.from_spec(path)
    if path.startswith("gs://"):
        return VideoFileSource(fetch_gcs(path, cache_dir, gcs_endpoint), name=path)
    if path.startswith(("http://", "https://")):
        return VideoFileSource(fetch_http(path, cache_dir), name=path)
    return VideoFileSource(Path(path), name=path)
