"""Setups written for the earlier DrishtiStream camera work unchanged: its documented config.yaml and
environment, `curl /health`, its JSON `/metrics` and the two clients its users wrote (a Python `websockets`
loop and a browser page).

The files beside this test are those setups, verbatim: `legacy-config.yaml`, `legacy_client.py` and
`legacy-page.html` (whose WebSocket URL the test points at its camera).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import pytest

from tests.migration.browser import open_page
from tests.service.camera import Camera, run_camera_once, write_video

HERE = Path(__file__).parent
LEGACY_VIDEO_SIZE = (320, 240)


@pytest.fixture
def legacy_dir(tmp_path: Path) -> Path:
    """A working directory as the earlier camera's users have it: their config.yaml and ./data/sample.mp4
    (30 fps, 3 s)."""
    shutil.copy(HERE / "legacy-config.yaml", tmp_path / "config.yaml")
    (tmp_path / "data").mkdir()
    write_video(tmp_path / "data" / "sample.mp4", frames=90, fps=30, size=LEGACY_VIDEO_SIZE)
    return tmp_path


@pytest.fixture
def legacy_camera(legacy_dir: Path) -> Iterator[Camera]:
    """A camera run from the earlier camera's config.yaml; only the port moves (DRISHTI_PORT), to a free
    one."""
    camera = Camera.start(legacy_dir)
    yield camera
    camera.stop()


def test_the_legacy_config_yaml_runs_as_it_is(legacy_camera: Camera) -> None:
    info = legacy_camera.info()
    assert info["name"] == "drishti-stream-primary"
    assert info["protocol_version"] == "v1.0"
    assert info["source"] == "./data/sample.mp4"
    assert (info["fps"], info["loop"], info["frame_count"]) == (30, True, 90)
    logs = [json.loads(line) for line in legacy_camera.output().splitlines() if line.startswith("{")]
    assert logs and all(entry["level"] in ("INFO", "WARNING", "ERROR") for entry in logs), logs


def test_another_protocol_version_is_refused_with_the_versions_spoken(legacy_dir: Path) -> None:
    config = legacy_dir / "config.yaml"
    config.write_text(config.read_text().replace('version: "v1.0"', 'version: "v2.0"'))
    result = run_camera_once(legacy_dir)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "drishti-stream: invalid setting stream.version (DRISHTI_PROTOCOL_VERSION) = 'v2.0': "
        "must be v1.0, the only protocol version this camera speaks"
    )


@pytest.mark.parametrize(
    "documented",
    [
        # the table's documented values, its upper-case log level included
        {"DRISHTI_FPS": "30", "DRISHTI_LOOP": "true", "DRISHTI_JPEG_QUALITY": "85",
         "DRISHTI_LOG_LEVEL": "INFO"},
        # other values, so each setting is seen to take effect (defaults alone would prove nothing)
        {"DRISHTI_FPS": "10", "DRISHTI_LOOP": "False", "DRISHTI_JPEG_QUALITY": "40",
         "DRISHTI_LOG_LEVEL": "Warning"},
    ],
    ids=["documented", "changed"],
)
def test_every_documented_environment_variable(tmp_path: Path, documented: dict[str, str]) -> None:
    """The earlier camera's environment table: DRISHTI_VIDEO_PATH (relative, as documented), DRISHTI_FPS,
    DRISHTI_LOOP, DRISHTI_JPEG_QUALITY, DRISHTI_LOG_LEVEL; DRISHTI_PORT and PORT have tests of their own."""
    (tmp_path / "data").mkdir()
    video = write_video(tmp_path / "data" / "sample.mp4", frames=30, fps=15, size=LEGACY_VIDEO_SIZE)
    camera = Camera.start(tmp_path, DRISHTI_VIDEO_PATH="./data/sample.mp4", **documented)
    try:
        fps, loop = int(documented["DRISHTI_FPS"]), documented["DRISHTI_LOOP"].lower() == "true"
        info = camera.info()
        assert (info["source"], info["fps"], info["loop"]) == ("./data/sample.mp4", fps, loop)
        assert info["source_fps"] == 15
        snapshot = httpx.get(camera.http + "/snapshot.jpg", timeout=5)
        index = int(snapshot.headers["X-Frame-Id"]) * 15 // fps
        index = index % 30 if loop else min(index, 29)  # looping, or holding the last frame
        assert snapshot.content == encoded(video, index, quality=int(documented["DRISHTI_JPEG_QUALITY"]))
        level = documented["DRISHTI_LOG_LEVEL"].upper()
        logged = {json.loads(line)["level"] for line in camera.output().splitlines() if line.startswith("{")}
        assert ("INFO" in logged) == (level == "INFO"), logged
    finally:
        camera.stop()


def encoded(video: Path, index: int, quality: int) -> bytes:
    """Frame `index` of `video` as a JPEG of that quality: what a camera with that setting sends."""
    capture = cv2.VideoCapture(str(video))
    for _ in range(index + 1):
        ok, image = capture.read()
        assert ok
    capture.release()
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def test_port_from_cloud_runs_variable(tmp_path: Path) -> None:
    """Only `PORT` names the port (camera_env drops the caller's DRISHTI_PORT): the camera listens there."""
    camera = Camera.start(tmp_path, port_variable="PORT")
    try:
        assert camera.info()["service"] == "DrishtiStream"
    finally:
        camera.stop()


def test_curl_health(legacy_camera: Camera) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed: the earlier camera's documentation checks the camera with it"
    result = subprocess.run(
        [curl, "-fsS", f"{legacy_camera.http}/health"], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(result.stdout) == {"status": "ok"}


def test_metrics_json_keeps_the_legacy_field_names(legacy_camera: Camera) -> None:
    client = subprocess.Popen(
        [sys.executable, str(HERE / "legacy_client.py"), legacy_camera.ws], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None
        client.stdout.readline()  # connected and receiving
        before = prometheus(legacy_camera)
        response = httpx.get(
            legacy_camera.http + "/metrics", headers={"Accept": "application/json"}, timeout=5
        )
        after = prometheus(legacy_camera)
    finally:
        client.kill()
        client.wait()
    assert response.headers["content-type"] == "application/json"
    figures = response.json()
    assert set(figures) == {"service", "version", "connections", "video", "scheduler"}
    assert (figures["service"], figures["version"], figures["connections"]) == ("DrishtiStream", "v1.0", 1)
    video = figures["video"]
    assert set(video) == {"path", "width", "height", "native_fps", "total_frames", "current_frame", "loop"}
    assert (video["path"], video["width"], video["height"]) == ("./data/sample.mp4", *LEGACY_VIDEO_SIZE)
    assert (video["native_fps"], video["total_frames"], video["loop"]) == (30.0, 90, True)
    assert 0 <= video["current_frame"] < 90
    scheduler = figures["scheduler"]
    assert set(scheduler) == {"fps", "epoch", "frame_id", "frames_produced", "frames_skipped"}
    assert scheduler["fps"] == 30
    assert video["current_frame"] == scheduler["frame_id"] % 90, "the source frame of the newest id, looping"
    assert (
        before["drishti_frames_produced"] <= scheduler["frames_produced"] <= after["drishti_frames_produced"]
    )
    assert before["drishti_frames_skipped"] <= scheduler["frames_skipped"] <= after["drishti_frames_skipped"]


def test_metrics_stay_prometheus_text_unless_json_is_preferred(legacy_camera: Camera) -> None:
    for accept in (
        None,
        "*/*",
        "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/json, */*",  # kubectl get --raw (through the API server's pod proxy): a tie keeps text
        "not a media type",
    ):
        headers = {"Accept": accept} if accept is not None else {}
        response = httpx.get(legacy_camera.http + "/metrics", headers=headers, timeout=5)
        assert response.headers["content-type"].startswith("text/plain"), accept
        assert "drishti_frames_produced_total" in response.text, accept
    json_first = ("application/json", "application/json, text/plain;q=0.5", "text/plain;q=0.2, application/*")
    for accept in json_first:
        response = httpx.get(legacy_camera.http + "/metrics", headers={"Accept": accept}, timeout=5)
        assert response.headers["content-type"] == "application/json", accept


def prometheus(camera: Camera) -> dict[str, float]:
    """The camera's frame counters on /metrics, by family name."""
    names = ("drishti_frames_produced", "drishti_frames_skipped")
    return {name: camera.sample(f"{name}_total") for name in names}


def test_the_legacy_python_client_prints_ids_and_timestamps(legacy_camera: Camera) -> None:
    client = subprocess.Popen(
        [sys.executable, str(HERE / "legacy_client.py"), legacy_camera.ws], stdout=subprocess.PIPE, text=True
    )
    try:
        assert client.stdout is not None
        lines = [client.stdout.readline().split() for _ in range(30)]
    finally:
        client.kill()
        client.wait()
    ids = [int(frame_id) for frame_id, _ in lines]
    stamps = [float(stamp) for _, stamp in lines]
    assert ids == sorted(set(ids)) and ids[-1] - ids[0] < 60, ids
    epoch = legacy_camera.info()["epoch"]
    assert all(
        abs(stamp - (epoch + frame_id / 30)) < 1e-3 for frame_id, stamp in zip(ids, stamps, strict=True)
    )


def test_the_legacy_browser_page_renders_frames(legacy_camera: Camera, chromium: str, tmp_path: Path) -> None:
    """The viewer page in headless Chromium: its own `<img>` shows frame after frame at the camera's size
    (read from the page: the image's natural size and the page's frame id text)."""
    page = (HERE / "legacy-page.html").read_text().replace("ws://localhost:8000/ws/stream", legacy_camera.ws)
    report = open_page(chromium, page, tmp_path, frames=10)
    assert "error" not in report, report
    assert (report["width"], report["height"]) == LEGACY_VIDEO_SIZE, report
    ids = [int(text.split()[1]) for text in report["texts"]]
    assert len(ids) == 10 and ids == sorted(set(ids)), ids
