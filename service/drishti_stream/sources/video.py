"""Video files through OpenCV (FFmpeg backend): MP4, AVI, MKV and whatever else FFmpeg decodes."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from drishti_stream.sources.base import FrameSource, SourceError

# Reading forward is exact and cheap for short gaps; longer jumps (a restart mid-video) seek instead.
MAX_FORWARD_READ = 64


class VideoFileSource(FrameSource):
    """Reads frames in order, seeking only to wrap around or to jump far ahead."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.name = name or str(path)
        if not path.is_file():
            raise SourceError(f"{self.name}: no such video file")
        stat = path.stat()
        self.identity = f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not self._capture.isOpened():
            raise SourceError(f"{self.name}: not a readable video (OpenCV/FFmpeg cannot open it)")
        ok, first = self._capture.read()
        if not ok or first is None:
            raise SourceError(f"{self.name}: corrupt or empty video (no decodable first frame)")
        self._position = 1
        self._last: tuple[int, np.ndarray] = (0, first)
        self.height, self.width = first.shape[:2]
        self.native_fps = _native_fps(self._capture.get(cv2.CAP_PROP_FPS))
        self.length = self._count_frames(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)))

    def _count_frames(self, reported: int) -> int:
        """The number of decodable frames: the container's count when its last frame reads, else counted."""
        if reported > 1 and self._read_at(reported - 1) is not None and self._read_at(reported) is None:
            return reported
        self._seek(0)
        count = 0
        while self._capture.grab():
            count += 1
        self._position = count
        return max(count, 1)

    def read(self, index: int) -> np.ndarray:
        if self._last[0] == index:
            return self._last[1]
        image = self._read_at(index)
        if image is None:
            raise SourceError(f"{self.name}: frame {index} could not be decoded")
        return image

    def _read_at(self, index: int) -> np.ndarray | None:
        if not (self._position <= index <= self._position + MAX_FORWARD_READ):
            self._seek(index)
        while self._position < index:
            if not self._capture.grab():
                return None
            self._position += 1
        ok, image = self._capture.read()
        if not ok:
            return None
        self._position += 1
        self._last = (index, image)
        return image

    def _seek(self, index: int) -> None:
        self._capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        self._position = index

    def close(self) -> None:
        self._capture.release()


def _native_fps(reported: float) -> Fraction:
    """The container's frame rate as an exact fraction (29.97 -> 30000/1001); 30 when it declares none."""
    if not reported or math.isnan(reported) or reported <= 0:
        return Fraction(30)
    return Fraction(reported).limit_denominator(1001)
