"""The frame store between real camera processes: a restart encodes nothing, two cameras started together
encode the video once, and `GET /frames/{id}.jpg` returns the exact JPEG a frame id carried."""

from __future__ import annotations

import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from hack.cluster.testing import wait_until
from tests.service.camera import Camera, collect

EPOCH = "1700000000"  # fixed, so frame ids mean the same frames in every process


def store_complete(camera: Camera) -> bool:
    return camera.info()["frame_store"]["state"] == "complete"


def encoded(camera: Camera) -> float:
    return camera.sample("drishti_frames_encoded_total")


def test_a_restarted_camera_serves_its_store_and_encodes_nothing(start_camera, short_video, tmp_path):
    settings = {"DRISHTI_VIDEO_PATH": str(short_video), "DRISHTI_FPS": "10", "DRISHTI_EPOCH": EPOCH}
    first = start_camera(**settings)
    wait_until(lambda: store_complete(first), timeout=30, what="the first pass")
    assert encoded(first) == 20, "each of the video's 20 frames once"
    store = first.info()["frame_store"]
    assert Path(store["path"]).parent == tmp_path / "cache" / "frames" and store["bytes"] > 0
    before = [httpx.get(f"{first.http}/frames/{k}.jpg").content for k in range(20)]
    first.stop()

    second = start_camera(**settings)
    assert store_complete(second), "ready with the store, not after a pass over the video"
    received = asyncio.run(collect(second.ws, count=25))
    assert len(received) == 25
    assert encoded(second) == 0
    assert [httpx.get(f"{second.http}/frames/{k}.jpg").content for k in range(20)] == before


def test_two_cameras_started_together_encode_the_video_once(start_camera, tmp_path):
    settings = {"DRISHTI_VIDEO_PATH": "synthetic:1280x720", "DRISHTI_FPS": "30", "DRISHTI_EPOCH": EPOCH}
    with ThreadPoolExecutor(2) as pool:
        cameras = list(pool.map(lambda _: start_camera(**settings), range(2)))
    wait_until(lambda: all(map(store_complete, cameras)), timeout=60, what="both cameras' stores complete")
    counts = [encoded(camera) for camera in cameras]
    assert sum(counts) == 300, f"the scene's 300 frames once, between the two cameras: {counts}"
    assert sorted(counts)[0] == 0, f"one camera filled the store, the other followed it: {counts}"
    assert len(list((tmp_path / "cache" / "frames").glob("*.frames"))) == 1
    latest = min(camera.info()["frame_id"] for camera in cameras)
    for frame_id in range(latest - 40, latest):
        one, other = (httpx.get(f"{camera.http}/frames/{frame_id}.jpg").content for camera in cameras)
        assert one == other


def test_a_frame_id_returns_the_jpeg_its_message_carried(start_camera):
    camera = start_camera(DRISHTI_VIDEO_PATH="synthetic:320x240", DRISHTI_FPS="30")
    received = asyncio.run(collect(camera.ws, count=10))
    for message in (r.message for r in received):
        response = httpx.get(f"{camera.http}/frames/{message['frame_id']}.jpg")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert response.content == base64.b64decode(message["image"])
        assert response.headers["x-frame-id"] == str(message["frame_id"])
        assert float(response.headers["x-frame-timestamp"]) == message["timestamp"]
    first = httpx.get(f"{camera.http}/frames/0.jpg")
    assert first.status_code == 200 and first.content.startswith(b"\xff\xd8")


def test_a_frame_id_not_due_yet_is_refused_with_when_it_will_be(start_camera):
    camera = start_camera(DRISHTI_VIDEO_PATH="synthetic:320x240", DRISHTI_FPS="30")
    future = camera.info()["frame_id"] + 30 * 60  # a minute ahead
    response = httpx.get(f"{camera.http}/frames/{future}.jpg")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith(f"frame {future} is not due yet: it is due in 5")
    assert "latest frame id is" in detail
    assert 58 <= int(response.headers["retry-after"]) <= 61
    for bad in ("-1", "x", "1.5"):
        assert httpx.get(f"{camera.http}/frames/{bad}.jpg").status_code == 422, bad


def test_the_openapi_document_describes_the_frames_endpoint(start_camera):
    camera = start_camera(DRISHTI_VIDEO_PATH="synthetic:320x240")
    operation = httpx.get(f"{camera.http}/openapi.json").json()["paths"]["/frames/{frame_id}.jpg"]["get"]
    assert set(operation["responses"]) >= {"200", "404", "422"}
    assert "image/jpeg" in operation["responses"]["200"]["content"]
    assert "not due yet" in operation["responses"]["404"]["description"]
    (parameter,) = operation["parameters"]
    assert parameter["schema"]["minimum"] == 0 and "epoch + k / fps" in parameter["description"]
