"""In-process test sources: frames given as arrays, and what the camera should make of them."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
from drishti_stream.sources.base import FrameSource


class Frames(FrameSource):
    """A source made of the given images, at the given native rate; with an `identity`, its frames are
    stored in a frame store like a video file's."""

    def __init__(self, images: list[np.ndarray], native_fps: Fraction = Fraction(30),
                 identity: str | None = None) -> None:
        self.images = images
        self.name = "frames"
        self.identity = identity
        self.height, self.width = images[0].shape[:2]
        self.native_fps = native_fps
        self.length = len(images)
        self.closed = False
        self.reads = 0

    def read(self, index: int) -> np.ndarray:
        assert not self.closed, "read after close"
        self.reads += 1
        return self.images[index]

    def close(self) -> None:
        self.closed = True


def noise(height: int, width: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()
