"""What the camera makes of a source: the declared rate, the JPEG bytes, the message size, the frame cache."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from fractions import Fraction

import cv2
import numpy as np
import pytest
from drishti_stream.camera import Camera, Frame, output_fps
from drishti_stream.settings import Settings
from drishti_stream.sources.base import FrameSource
from prometheus_client import REGISTRY

MIB = 1 << 20


class Frames(FrameSource):
    """A source made of the given images, at the given native rate."""

    def __init__(self, images: list[np.ndarray], native_fps: Fraction = Fraction(30)) -> None:
        self.images = images
        self.name = "frames"
        self.height, self.width = images[0].shape[:2]
        self.native_fps = native_fps
        self.length = len(images)
        self.closed = False

    def read(self, index: int) -> np.ndarray:
        return self.images[index]

    def close(self) -> None:
        self.closed = True


def noise(height: int, width: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize(("configured", "native", "expected"), [
    (None, Fraction(25), 25),
    (None, Fraction(30000, 1001), 30),  # NTSC: the nearest integer rate
    (None, Fraction(240), 120),  # beyond what consumers accept: the maximum
    (None, Fraction(1, 3), 1),  # a time-lapse: at least 1
    (15, Fraction(30), 15),  # a configured rate wins
    (60, Fraction(25), 60),
])
def test_the_declared_rate_is_the_configured_one_else_the_native_one_within_1_to_120(configured, native,
                                                                                     expected):
    source = Frames([noise(8, 8)], native)
    assert output_fps(configured, source) == expected
    camera = Camera(Settings(fps=configured, epoch=1000.0), source)
    assert camera.fps == expected
    assert json.loads(camera.produce(0).message)["fps"] == expected


def test_a_produced_frame_cannot_be_changed_by_any_of_the_clients_sharing_it():
    frame = Camera(Settings(fps=30, epoch=1000.0), Frames([noise(8, 8)])).produce(0)
    for name, value in [("jpeg", b""), ("message", "{}"), ("wire", b""), ("frame_id", 1)]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frame, name, value)


@pytest.mark.parametrize("quality", [10, 85, 100])
def test_a_frame_is_the_source_image_encoded_at_the_configured_quality_and_nothing_else(quality):
    images = [noise(120, 160, seed) for seed in range(3)]
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=quality), Frames(images))
    for frame_id in range(3):
        frame = camera.produce(frame_id)
        assert frame.jpeg == jpeg(images[frame_id], quality)
        assert base64.b64decode(json.loads(frame.message)["image"]) == frame.jpeg


def test_a_frame_over_the_size_limits_is_scaled_down_before_encoding():
    image = noise(240, 320)
    camera = Camera(Settings(fps=30, epoch=1000.0, max_width=160, jpeg_quality=90), Frames([image]))
    frame = camera.produce(0)
    assert cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (120, 160, 3)
    assert frame.jpeg == jpeg(cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA), 90)
    extended = json.loads(camera.produce(0, with_meta=True).meta_message)["meta"]
    assert (extended["width"], extended["height"]) == (160, 120)


@pytest.mark.parametrize(("declared", "read"), [
    ((240, 320), (120, 160)),  # a stream that changes resolution midway
    ((240, 240), (120, 240)),
    ((240, 240), (240, 120)),
])
def test_a_source_image_of_another_size_is_scaled_to_the_cameras_size(declared, read):
    source = Frames([noise(*declared), noise(*read, seed=8)])
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=90), source)
    frame = camera.produce(1)
    height, width = declared
    assert cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (height, width, 3)
    assert frame.jpeg == jpeg(cv2.resize(source.images[1], (width, height), interpolation=cv2.INTER_AREA), 90)


@pytest.mark.parametrize("limits", [{}, {"max_width": 161, "max_height": 121}, {"max_width": 4000}])
def test_a_source_within_the_limits_is_sent_at_its_own_size_even_an_odd_one(limits):
    image = noise(121, 161)
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=90, **limits), Frames([image]))
    assert camera.size == (161, 121)
    assert camera.produce(0).jpeg == jpeg(image, 90)  # not resized


@pytest.mark.parametrize(("rows", "warned"), [(560, False), (680, True)])
def test_a_message_over_1_mib_is_warned_about_at_start(rows, warned, caplog):
    # about 1.7 kB of base64 per row of 640 noisy pixels at quality 100: 560 rows ~ 0.93 MiB, 680 ~ 1.13 MiB
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=100), Frames([noise(rows, 640)]))
    with caplog.at_level(logging.WARNING, logger="drishti_stream.camera"):
        size = camera.check_message_size()
    assert size == len(camera.produce(0).message)
    assert (size > MIB) is warned
    assert (len(caplog.records) == 1) is warned
    if warned:
        assert "over the 1 MiB that websockets clients accept" in caplog.text


def test_a_looped_frame_is_encoded_once_and_counted_as_a_cache_hit():
    images = [noise(120, 160, seed) for seed in range(3)]
    camera = Camera(Settings(fps=30, epoch=1000.0), Frames(images))
    hits = sample("drishti_frame_cache_hits_total")
    first = [camera.produce(frame_id).jpeg for frame_id in range(3)]
    assert sample("drishti_frame_cache_hits_total") == hits
    assert sample("drishti_frame_cache_bytes") == sum(map(len, first))
    again = [camera.produce(frame_id).jpeg for frame_id in range(3, 9)]
    assert all(a is b for a, b in zip(again, first + first, strict=True))
    assert sample("drishti_frame_cache_hits_total") == hits + 6


def test_without_a_cache_budget_every_loop_encodes_again():
    images = [noise(120, 160)]
    camera = Camera(Settings(fps=30, epoch=1000.0, cache_budget_mb=0), Frames(images))
    hits = sample("drishti_frame_cache_hits_total")
    first, second = camera.produce(0).jpeg, camera.produce(1).jpeg
    assert first == second and first is not second
    assert sample("drishti_frame_cache_hits_total") == hits


def test_the_cache_fills_its_budget_in_mib_to_within_one_frame():
    # 26 noisy frames (~39 kB each) leave ~30 kB of a 1 MiB budget to the 40 flat ones (~950 B each)
    images = [noise(120, 160, seed) for seed in range(26)] + [np.full((120, 160, 3), 90, np.uint8)] * 40
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=100, cache_budget_mb=1), Frames(images))
    first = [camera.produce(frame_id).jpeg for frame_id in range(len(images))]
    cached = sample("drishti_frame_cache_bytes")
    assert MIB - len(first[-1]) < cached <= MIB
    reused = [camera.produce(len(images) + i).jpeg is first[i] for i in range(len(images))]
    assert sum(len(jpeg) for jpeg, kept in zip(first, reused, strict=True) if kept) == cached
    assert reused[:26] == [True] * 26 and not reused[-1]


def test_a_frame_in_a_log_line_is_named_not_dumped() -> None:
    big = b"\xff" * 200_000
    frame = Frame(7, 1.5, 3, big, "x" * 300_000, big, "y" * 300_000, big)
    assert repr(frame) == "Frame(frame_id=7, timestamp=1.5, source_index=3)"
