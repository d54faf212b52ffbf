"""The HTTP surface: info, health, readiness, metrics, docs, snapshot, MJPEG; tracing on request."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
from drishti_stream.sources.synthetic import read_index
from prometheus_client.parser import text_string_to_metric_families

from tests.ports import free_port
from tests.service.camera import Camera, camera_env, collect


def test_info_describes_the_camera(start_camera, short_video):
    camera = start_camera(DRISHTI_VIDEO_PATH=str(short_video), DRISHTI_FPS="20", DRISHTI_EPOCH="1700000000",
                          DRISHTI_NAME="gate-a")
    info = camera.info()
    assert info["name"] == "gate-a"
    assert info["protocol_version"] == "v1.0"
    assert info["source"] == str(short_video)
    assert info["resolution"] == {"width": 320, "height": 240}
    assert (info["source_fps"], info["fps"], info["frame_count"], info["loop"]) == (10.0, 20, 20, True)
    assert info["epoch"] == 1700000000
    assert abs(info["frame_id"] - (time.time() - 1700000000) * 20) < 25
    assert info["clients"] == 0


def test_health_ready_and_docs(start_camera):
    camera = start_camera()
    assert httpx.get(camera.http + "/health").json() == {"status": "ok"}
    ready = httpx.get(camera.http + "/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert httpx.get(camera.http + "/docs").status_code == 200
    paths = httpx.get(camera.http + "/openapi.json").json()["paths"]
    assert {"/", "/health", "/ready", "/metrics", "/snapshot.jpg", "/stream.mjpg", "/frames/{frame_id}.jpg"} \
        <= set(paths)


def test_metrics_are_prometheus_text_with_the_camera_series(start_camera):
    camera = start_camera(DRISHTI_FPS="30")
    asyncio.run(collect(camera.ws, count=10))
    families = {f.name: f for f in text_string_to_metric_families(camera.metrics())}
    for name in ("drishti_frames_produced", "drishti_frames_skipped", "drishti_clients_connected",
                 "drishti_client_frames_dropped", "drishti_client_disconnects", "drishti_encode_seconds",
                 "drishti_send_lag_seconds", "drishti_frames_encoded", "drishti_frame_store_bytes"):
        assert name in families, name
    produced = families["drishti_frames_produced"].samples[0].value
    assert produced >= 10
    lag_count = next(s for s in families["drishti_send_lag_seconds"].samples if s.name.endswith("_count"))
    assert lag_count.value >= 10
    reasons = {s.labels["reason"]: s.value for s in families["drishti_client_disconnects"].samples
               if s.name.endswith("_total")}
    assert reasons.get("client_closed", 0) >= 1


def test_snapshot_is_the_current_frame(start_camera):
    camera = start_camera(DRISHTI_FPS="30")
    response = httpx.get(camera.http + "/snapshot.jpg")
    assert response.headers["content-type"] == "image/jpeg"
    frame_id = int(response.headers["x-frame-id"])
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert read_index(image) == frame_id % 300


def test_mjpeg_streams_consecutive_jpeg_parts(start_camera):
    camera = start_camera(DRISHTI_FPS="30")
    ids = []
    with httpx.stream("GET", camera.http + "/stream.mjpg", timeout=10) as response:
        assert response.headers["content-type"].startswith("multipart/x-mixed-replace; boundary=frame")
        buffer = b""
        for chunk in response.iter_bytes():
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, rest = buffer.split(b"\r\n\r\n", 1)
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
                length = int(headers["Content-Length"])
                if len(rest) < length + 2:
                    break
                image = cv2.imdecode(np.frombuffer(rest[:length], np.uint8), cv2.IMREAD_COLOR)
                assert read_index(image) == int(headers["X-Frame-Id"]) % 300
                ids.append(int(headers["X-Frame-Id"]))
                buffer = rest[length + 2:]
            if len(ids) >= 5:
                break
    assert len(ids) >= 5 and ids == sorted(set(ids))


def test_output_size_limit_downscales_and_large_frames_are_warned_about(start_camera):
    big = start_camera(DRISHTI_VIDEO_PATH="synthetic:3840x2160", DRISHTI_JPEG_QUALITY="100", DRISHTI_FPS="5")
    assert "over the 1 MiB" in big.output()
    limited = start_camera(DRISHTI_VIDEO_PATH="synthetic:3840x2160", DRISHTI_JPEG_QUALITY="100",
                           DRISHTI_FPS="5", DRISHTI_MAX_WIDTH="1280")
    assert limited.info()["resolution"] == {"width": 1280, "height": 720}
    assert "over the 1 MiB" not in limited.output()
    received = asyncio.run(collect(limited.ws, count=2))  # a stock client accepts these messages
    assert received[0].image.shape == (720, 1280, 3)


def test_frame_production_is_traced_when_otel_asks(tmp_path):
    port = free_port()
    env = camera_env(DRISHTI_PORT=str(port), DRISHTI_FPS="10", DRISHTI_CACHE_DIR=str(tmp_path / "cache"),
                     OTEL_TRACES_EXPORTER="console",
                     OTEL_SERVICE_NAME="gate-cam", OTEL_BSP_SCHEDULE_DELAY="100")
    process = subprocess.Popen([sys.executable, "-m", "drishti_stream"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    camera = Camera(port, process, tmp_path / "unused.log")
    try:
        camera.wait_ready()
        time.sleep(1)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    for span in ('"name": "frame.produce"', '"name": "frame.read"', '"name": "frame.encode"',
                 '"name": "frame.fanout"', '"service.name": "gate-cam"', '"drishti.frame_id"'):
        assert span in output, span
