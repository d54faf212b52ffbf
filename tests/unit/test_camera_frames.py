"""What the camera makes of a source: the declared rate, the JPEG bytes, the message size."""

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
from prometheus_client import REGISTRY

from tests.unit.sources import Frames, jpeg, noise

MIB = 1 << 20


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


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
    for name, value in [("tail", b""), ("message", "{}"), ("wire", b""), ("frame_id", 1)]:
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
    camera = Camera(Settings(fps=30, epoch=1000.0, jpeg_quality=100), Frames([noise(rows, 640)]),
                    now=lambda: 1000.0)  # frame 0 is the one due now
    with caplog.at_level(logging.WARNING, logger="drishti_stream.camera"):
        size = camera.check_message_size()
    assert size == len(camera.produce(0).message)
    assert (size > MIB) is warned
    assert (len(caplog.records) == 1) is warned
    if warned:
        assert "over the 1 MiB that websockets clients accept" in caplog.text


def test_a_frame_in_a_log_line_is_named_not_dumped() -> None:
    big = b"\xff" * 200_000
    frame = Frame(7, 1.5, 3, big, "x" * 300_000, big, "y" * 300_000, big)
    assert repr(frame) == "Frame(frame_id=7, timestamp=1.5, source_index=3)"
