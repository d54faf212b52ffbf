"""The frame clock: time, not a loop counter, defines the stream.

Frame k is due at `epoch + k / fps`. Everything else (frame ids, which source frame is shown, skipping when
late) follows from that one rule, so replicas and restarts with the same epoch agree frame for frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class FrameClock:
    epoch: float
    fps: int

    def due(self, frame_id: int) -> float:
        """Wall-clock time (Unix seconds) at which frame `frame_id` is due."""
        return self.epoch + frame_id / self.fps

    def latest_due(self, now: float) -> int:
        """The newest frame id due at `now` (0 before the epoch)."""
        return max(0, math.floor((now - self.epoch) * self.fps + 1e-9))


def source_index(frame_id: int, output_fps: int, native_fps: Fraction, length: int, loop: bool) -> int:
    """The source frame shown as output frame `frame_id`: resampled by time, wrapped or held at the end."""
    position = (frame_id * native_fps.numerator) // (output_fps * native_fps.denominator)
    return position % length if loop else min(position, length - 1)
