"""Per-client extras asked for in the URL, on a real camera next to plain clients: a lower rate (`?fps=N`) and
extended metadata (`?meta=1`)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import websockets
from drishti_stream.probe import run_probe
from drishti_stream.protocol import message_schema
from drishti_stream.sources.synthetic import read_index
from jsonschema import Draft202012Validator

from tests.service.camera import assert_every_frame_sent, collect


def slot(frame_id: int, fps: int, camera_fps: int) -> int:
    """Which of the client's periods (epoch + s / fps) a camera frame falls in."""
    return frame_id * fps // camera_fps


def refusal(url: str) -> websockets.frames.Close:
    """The close frame a client gets instead of frames."""
    async def connect():
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd

    return asyncio.run(connect())


def test_a_lower_rate_sends_the_first_frame_of_each_of_the_clients_periods(start_camera):
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_VIDEO_PATH="synthetic:320x240")
    skipped = camera.skipped()

    async def three_clients():
        early = asyncio.create_task(collect(camera.ws + "?fps=7", seconds=4))
        full = asyncio.create_task(collect(camera.ws, seconds=4))
        await asyncio.sleep(1.3)  # joins in the middle of one of its periods
        late = await collect(camera.ws + "?fps=7", seconds=2.5)
        return await early, await full, late

    early, full, late = asyncio.run(three_clients())
    skipped = camera.skipped() - skipped
    for received in (early, late):
        ids = [r.message["frame_id"] for r in received]
        slots = [slot(i, 7, 30) for i in ids]
        assert slots == sorted(set(slots)), f"at most one frame per period of 1/7 s: {ids}"
        # every period is served; a period's first frame is sent unless the camera itself skipped it
        assert slots[-1] - slots[0] + 1 - len(slots) <= skipped, ids
        off_grid = [i for i in ids if slot(i - 1, 7, 30) == slot(i, 7, 30)]
        assert len(off_grid) <= skipped, f"not the first frame of their period: {off_grid}"
        for r in received:  # the same v1.0 messages: the camera's fps, each image the frame of its id
            assert r.message["fps"] == 30 and read_index(r.image) == r.message["frame_id"] % 300
    assert 7 * 4 - 2 <= len(early) <= 7 * 4 + 1
    late_ids = {r.message["frame_id"] for r in late}
    common = [r.message["frame_id"] for r in early if late[0].message["frame_id"] <= r.message["frame_id"]
              <= late[-1].message["frame_id"]]
    assert len(common) >= 10 and set(common) == late_ids, "every client at 7 fps gets the same frame ids"
    assert_every_frame_sent(full, skipped)  # the full-rate client next to them misses nothing
    assert len(full) >= 30 * 4 - 3


@pytest.mark.parametrize("value", ["0", "31", "ten", "2.5"])
def test_a_rate_out_of_range_is_refused_with_1008_naming_the_range(start_camera, value):
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_VIDEO_PATH="synthetic:320x240")

    close = refusal(f"{camera.ws}?fps={value}")
    assert close.code == 1008
    assert close.reason == f"fps must be an integer from 1 to 30 (the camera's rate), got '{value}'"
    response = httpx.get(f"{camera.http}/stream.mjpg?fps={value}", timeout=5)
    assert response.status_code == 422
    assert response.json()["detail"] == close.reason
    assert camera.sample("drishti_client_disconnects_total", reason="bad_request") == 1.0


def test_mjpeg_at_a_lower_rate(start_camera):
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_VIDEO_PATH="synthetic:320x240")
    ids = []
    with httpx.stream("GET", camera.http + "/stream.mjpg?fps=5", timeout=10) as response:
        for line in response.iter_lines():
            if line.startswith("X-Frame-Id: "):
                ids.append(int(line.removeprefix("X-Frame-Id: ")))
            if len(ids) >= 8:
                break
    assert [slot(i, 5, 30) for i in ids] == list(range(slot(ids[0], 5, 30), slot(ids[0], 5, 30) + 8)), ids


def test_extended_metadata_only_for_the_client_that_asks(start_camera):
    camera = start_camera(DRISHTI_FPS="20", DRISHTI_VIDEO_PATH="synthetic:320x240", DRISHTI_NAME="gate-3")

    async def both():
        return await asyncio.gather(collect(camera.ws + "?meta=1", seconds=2), collect(camera.ws, seconds=2))

    extended, plain = asyncio.run(both())
    info = camera.info()
    validator = Draft202012Validator(message_schema(meta=True))
    for r in extended:
        validator.validate(r.message)
        meta = r.message["meta"]
        assert meta["source_index"] == read_index(r.image) == r.message["frame_id"] * 30 // 20 % 300
        assert (meta["name"], meta["epoch"]) == ("gate-3", info["epoch"])
        assert (meta["height"], meta["width"]) == r.image.shape[:2] == (240, 320)
    by_id = {r.message["frame_id"]: r.message for r in plain}
    common = [r.message for r in extended if r.message["frame_id"] in by_id]
    assert len(common) >= 30
    for message in common:  # the same frame, the same six fields; the plain client never sees `meta`
        fields = ["source", "version", "frame_id", "timestamp", "fps", "image"]
        assert list(by_id[message["frame_id"]]) == fields
        assert {k: v for k, v in message.items() if k != "meta"} == by_id[message["frame_id"]]


def test_the_probe_checks_extended_metadata_when_its_url_asks(start_camera):
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_VIDEO_PATH="synthetic:320x240")
    report = asyncio.run(run_probe(camera.ws + "?meta=1&fps=10", 1.5))
    assert report.ok, report.summary()
    assert 12 <= report.frames <= 16


def test_a_bad_meta_value_is_refused_with_1008(start_camera):
    camera = start_camera(DRISHTI_VIDEO_PATH="synthetic:320x240")

    close = refusal(f"{camera.ws}?meta=yes")
    assert (close.code, close.reason) == (
        1008, "meta must be 0 or 1 (1: extended metadata in every message), got 'yes'")
