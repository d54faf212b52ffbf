"""A generated scene, so a camera runs with no video at all.

Each frame is a pure function of its index: a textured floor, dots walking across it, the index in text for
people and as a 16-cell barcode along the bottom edge for programs (`read_index`), robust to JPEG.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import cv2
import numpy as np

from drishti_stream.settings import synthetic_size
from drishti_stream.sources.base import FrameSource, SourceError

NATIVE_FPS = 30
LENGTH = 300  # ten seconds, then the scene loops
SCENE_VERSION = 1  # raise it with any change to what is drawn: it keys the frame store
BARCODE_BITS = 16
WALKERS = 24


class SyntheticSource(FrameSource):
    def __init__(self, width: int, height: int) -> None:
        self.name = f"synthetic:{width}x{height}"
        self.identity = f"{self.name}:scene-{SCENE_VERSION}"
        self.width, self.height = width, height
        self.native_fps = Fraction(NATIVE_FPS)
        self.length = LENGTH
        self._floor = _textured_floor(width, height)
        rng = np.random.default_rng(7)
        self._starts = rng.uniform(0, 1, size=(WALKERS, 2))
        self._speeds = rng.uniform(-0.004, 0.004, size=(WALKERS, 2))
        self._colors = [tuple(int(c) for c in rng.integers(40, 255, 3)) for _ in range(WALKERS)]

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticSource:
        try:
            return cls(*synthetic_size(spec))
        except ValueError as exc:
            raise SourceError(str(exc)) from None

    def read(self, index: int) -> np.ndarray:
        image = self._floor.copy()
        radius = max(4, self.height // 60)
        positions = (self._starts + self._speeds * index) % 1.0
        for (x, y), color in zip(positions, self._colors, strict=True):
            centre = (int(x * self.width), int(y * (self.height - _band_height(self.height))))
            cv2.circle(image, centre, radius, color, thickness=-1, lineType=cv2.LINE_AA)
        scale = self.height / 720
        cv2.putText(image, f"DrishtiStream synthetic  frame {index}", (int(20 * scale), int(50 * scale)),
                    cv2.FONT_HERSHEY_SIMPLEX, 1.2 * scale, (255, 255, 255), max(1, int(2 * scale)),
                    cv2.LINE_AA)
        _draw_barcode(image, index)
        return image


def _band_height(height: int) -> int:
    return max(12, height // 24)


def _textured_floor(width: int, height: int) -> np.ndarray:
    """A static, camera-like background: a gradient with blurred noise, so JPEG sizes resemble real
    footage."""
    rng = np.random.default_rng(1)
    noise = cv2.GaussianBlur(rng.integers(0, 255, (height, width), dtype=np.uint8), (0, 0), 1.2)
    gradient = np.linspace(60, 160, width, dtype=np.float32)[None, :]
    base = (gradient * 0.7 + noise.astype(np.float32) * 0.3).astype(np.uint8)
    return cv2.merge([base, (base * 0.9).astype(np.uint8), (base * 0.8).astype(np.uint8)])


def _cells(width: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, width, BARCODE_BITS + 1).astype(int)
    return list(itertools.pairwise(edges))


def _draw_barcode(image: np.ndarray, index: int) -> None:
    height, width = image.shape[:2]
    top = height - _band_height(height)
    for bit, (left, right) in enumerate(_cells(width)):
        on = (index >> (BARCODE_BITS - 1 - bit)) & 1
        image[top:, left:right] = 255 if on else 0


def read_index(image: np.ndarray) -> int:
    """The source index drawn into a synthetic frame (decoded JPEG, any size), read from its barcode."""
    height, width = image.shape[:2]
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    row = height - _band_height(height) // 2
    value = 0
    for left, right in _cells(width):
        cell = gray[row, left + (right - left) // 4: right - (right - left) // 4]
        value = (value << 1) | int(cell.mean() > 127)
    return value
