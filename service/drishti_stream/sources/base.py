"""The interface every frame source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction

import numpy as np


class SourceError(Exception):
    """A source that cannot be opened or read; the message is the one line shown to the user."""


class FrameSource(ABC):
    """A finite sequence of BGR frames at a native rate, read by index (mostly in increasing order)."""

    name: str
    width: int
    height: int
    native_fps: Fraction
    length: int
    # What determines its frames' pixels, for the frame store's key; None: unknown, so nothing is stored.
    identity: str | None = None

    @abstractmethod
    def read(self, index: int) -> np.ndarray:
        """The frame at `index` (0 <= index < length), as an HxWx3 uint8 BGR array."""

    def close(self) -> None:
        """Releases whatever the source holds open."""
