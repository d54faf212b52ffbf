"""The v1.0 stream from a real camera process, read by real `websockets` clients."""

from __future__ import annotations

import asyncio
import base64
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest
import websockets
from drishti_stream.clock import source_index
from drishti_stream.protocol import message_schema
from drishti_stream.sources.synthetic import LENGTH, NATIVE_FPS, read_index
from jsonschema import Draft202012Validator

from tests.service.camera import assert_every_frame_sent, assert_on_time, collect


def expected_synthetic_index(frame_id: int, fps: int) -> int:
    return source_index(frame_id, fps, Fraction(NATIVE_FPS), LENGTH, loop=True)


def test_messages_follow_the_v1_contract_and_show_their_frame(start_camera):
    camera = start_camera(DRISHTI_FPS="30")
    received = asyncio.run(collect(camera.ws, count=40))
    validator = Draft202012Validator(message_schema())
    assert len(received) == 40
    for item in received:
        message = item.message
        assert list(message) == ["source", "version", "frame_id", "timestamp", "fps", "image"]
        validator.validate(message)
        assert message["source"] == "DrishtiStream" and message["version"] == "v1.0"
        assert isinstance(message["frame_id"], int) and message["frame_id"] >= 0
        assert isinstance(message["timestamp"], float) and message["timestamp"] > 0
        assert message["fps"] == 30
        jpeg = base64.b64decode(message["image"], validate=True)
        assert jpeg[:2] == b"\xff\xd8" and b"\xff\xc0" in jpeg  # SOI and a baseline (SOF0) frame header
        image = item.image
        assert image.shape == (720, 1280, 3)
        assert read_index(image) == expected_synthetic_index(message["frame_id"], 30)


def test_frames_arrive_in_order_without_duplicates_on_the_wall_clock(start_camera):
    camera = start_camera(DRISHTI_FPS="20")
    skipped = camera.skipped()
    received = asyncio.run(collect(camera.ws, seconds=3.5))
    ids = [r.message["frame_id"] for r in received]
    assert_every_frame_sent(received, camera.skipped() - skipped)
    epoch = camera.info()["epoch"]
    for item in received:
        frame_id = item.message["frame_id"]
        assert item.message["timestamp"] == pytest.approx(epoch + frame_id / 20, abs=1e-6)
    assert_on_time(received, 20)
    elapsed = received[-1].at - received[0].at
    assert elapsed >= 3.0
    assert abs((ids[-1] - ids[0]) - elapsed * 20) <= 1, "pacing within one frame over 3 s"


def test_output_rate_resamples_the_source_by_time(start_camera):
    camera = start_camera(DRISHTI_FPS="10")  # synthetic is 30 fps natively: every third source frame
    for item in asyncio.run(collect(camera.ws, count=12)):
        assert read_index(item.image) == (item.message["frame_id"] * 3) % LENGTH


def test_unset_fps_uses_the_native_rate(start_camera, short_video):
    camera = start_camera(DRISHTI_VIDEO_PATH=str(short_video))
    info = camera.info()
    assert info["fps"] == 10 and info["source_fps"] == 10 and info["frame_count"] == 20
    assert {r.message["fps"] for r in asyncio.run(collect(camera.ws, count=3))} == {10}


def test_a_file_loops_seamlessly_and_shows_the_source_pixels(start_camera, short_video):
    camera = start_camera(DRISHTI_VIDEO_PATH=str(short_video), DRISHTI_JPEG_QUALITY="95")
    capture = cv2.VideoCapture(str(short_video))
    source = [capture.read()[1] for _ in range(20)]
    skipped = camera.skipped()
    received = asyncio.run(collect(camera.ws, seconds=4.5))  # more than two loops of 2 s
    assert_every_frame_sent(received, camera.skipped() - skipped)  # no reset across loop boundaries
    wrapped = 0
    for item in received:
        index = item.message["frame_id"] % 20
        wrapped += index == 0
        image = item.image
        assert read_index(image) == index
        difference = np.abs(image.astype(int) - source[index].astype(int)).mean()
        assert difference < 3.0, "pixels within JPEG tolerance"
    assert wrapped >= 2


def test_loop_false_repeats_the_last_frame_with_increasing_ids(start_camera, short_video):
    epoch = time.time() - 5  # the 2 s video ended 3 s ago
    camera = start_camera(DRISHTI_VIDEO_PATH=str(short_video), DRISHTI_LOOP="false", DRISHTI_EPOCH=str(epoch))
    received = asyncio.run(collect(camera.ws, count=8))
    ids = [r.message["frame_id"] for r in received]
    assert ids[0] >= 40 and ids == list(range(ids[0], ids[0] + 8))
    assert {read_index(r.image) for r in received} == {19}


def test_a_restart_with_the_same_epoch_continues_ids_and_images(start_camera, tmp_path):
    epoch = str(time.time() - 100)
    first = start_camera(DRISHTI_FPS="15", DRISHTI_EPOCH=epoch)
    before = asyncio.run(collect(first.ws, count=5))
    first.stop()
    second = start_camera(DRISHTI_FPS="15", DRISHTI_EPOCH=epoch)
    after = asyncio.run(collect(second.ws, count=5))
    assert after[0].message["frame_id"] > before[-1].message["frame_id"] >= 1500
    for item in before + after:
        frame_id = item.message["frame_id"]
        assert item.message["timestamp"] == pytest.approx(float(epoch) + frame_id / 15, abs=1e-6)
        assert read_index(item.image) == expected_synthetic_index(frame_id, 15)


def test_two_clients_get_identical_frames(start_camera):
    camera = start_camera(DRISHTI_FPS="25")

    async def both():
        return await asyncio.gather(collect(camera.ws, seconds=2), collect(camera.ws, seconds=2))

    first, second = asyncio.run(both())
    by_id = {r.message["frame_id"]: r.message for r in first}
    common = [r.message for r in second if r.message["frame_id"] in by_id]
    assert len(common) >= 40
    for message in common:
        assert message == by_id[message["frame_id"]]


def test_permessage_deflate_is_declined_for_clients_that_offer_it(start_camera):
    camera = start_camera()

    async def negotiated():
        async with websockets.connect(camera.ws) as ws:  # offers permessage-deflate by default
            await ws.recv()
            return ws.response.headers.get("Sec-WebSocket-Extensions"), ws.protocol.extensions

    header, extensions = asyncio.run(negotiated())
    assert header is None and extensions == []


def test_clients_beyond_the_limit_are_refused_with_1013(start_camera):
    camera = start_camera(DRISHTI_MAX_CLIENTS="1")

    async def second_client():
        async with websockets.connect(camera.ws) as first:
            await first.recv()
            async with websockets.connect(camera.ws) as second:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await second.recv()
            assert (await first.recv())  # the admitted client keeps streaming
            return closed.value.rcvd

    close = asyncio.run(second_client())
    assert close.code == 1013 and "limit of 1" in close.reason
