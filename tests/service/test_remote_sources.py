"""gs:// against a real GCS emulator server and http:// against a real HTTP server, both on loopback."""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from drishti_stream.sources.remote import cached_path
from drishti_stream.sources.synthetic import read_index
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from hack.cluster.testing import wait_until
from tests.ports import free_port
from tests.service.camera import collect, run_camera_once

BUCKET = "crowd-videos"


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gcp-storage-emulator server process; yields its STORAGE_EMULATOR_HOST."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("gcs")
    emulator = shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent))
    assert emulator, "gcp-storage-emulator is installed by the test extras"
    process = subprocess.Popen([emulator, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                                "--default-bucket", BUCKET], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        assert process.poll() is None, f"the GCS emulator exited with {process.returncode}"
        try:
            return httpx.get(f"{host}/storage/v1/b", timeout=1) is not None
        except httpx.HTTPError:
            return False

    wait_until(serving, 20, 0.1, what="the GCS emulator")
    yield host
    process.terminate()
    process.wait(10)


@pytest.fixture
def uploaded(gcs_emulator: str, short_video: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    client.bucket(BUCKET).blob("site-a/gate.mp4").upload_from_filename(str(short_video))
    return f"gs://{BUCKET}/site-a/gate.mp4"


def test_a_gs_video_is_downloaded_once_and_streamed(start_camera, uploaded, gcs_emulator, tmp_path):
    camera = start_camera(DRISHTI_VIDEO_PATH=uploaded, STORAGE_EMULATOR_HOST=gcs_emulator)
    received = asyncio.run(collect(camera.ws, count=5))
    assert [read_index(r.image) for r in received] == [r.message["frame_id"] % 20 for r in received]
    assert camera.info()["source"] == uploaded
    download = cached_path(uploaded, tmp_path / "cache")
    assert download.is_file()
    stamp = download.stat().st_mtime_ns
    camera.stop()
    start_camera(DRISHTI_VIDEO_PATH=uploaded, STORAGE_EMULATOR_HOST=gcs_emulator)
    assert download.stat().st_mtime_ns == stamp, "the second start reuses the cached download"


@pytest.mark.parametrize("url", [f"gs://{BUCKET}/no/such.mp4", "gs://no-such-bucket/gate.mp4"])
def test_a_missing_gs_object_or_bucket_fails_fast_naming_the_url(tmp_path, gcs_emulator, url):
    result = run_camera_once(tmp_path, DRISHTI_VIDEO_PATH=url, STORAGE_EMULATOR_HOST=gcs_emulator,
                             DRISHTI_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"drishti-stream: {url}: bucket or object not found"]


@pytest.fixture(scope="module")
def http_server(short_video: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(short_video.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_http_video_is_downloaded_and_streamed(start_camera, http_server, short_video):
    camera = start_camera(DRISHTI_VIDEO_PATH=f"{http_server}/{short_video.name}")
    received = asyncio.run(collect(camera.ws, count=5))
    assert [read_index(r.image) for r in received] == [r.message["frame_id"] % 20 for r in received]


def test_an_http_404_fails_fast_naming_the_url(tmp_path, http_server):
    url = f"{http_server}/missing.mp4"
    result = run_camera_once(tmp_path, DRISHTI_VIDEO_PATH=url, DRISHTI_CACHE_DIR=str(tmp_path / "cache"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [f"drishti-stream: {url}: HTTP 404 File not found"]


def test_a_gs_video_comes_from_the_endpoint_gcs_endpoint_names(start_camera, uploaded, gcs_emulator):
    """video.gcs_endpoint alone (no STORAGE_EMULATOR_HOST) reaches the emulator: how a VirtualCamera names
    one."""
    camera = start_camera(DRISHTI_VIDEO_PATH=uploaded, DRISHTI_GCS_ENDPOINT=gcs_emulator,
                          STORAGE_EMULATOR_HOST="")
    received = asyncio.run(collect(camera.ws, count=5))
    assert [read_index(r.image) for r in received] == [r.message["frame_id"] % 20 for r in received]


def test_gcs_endpoint_must_be_an_http_url(tmp_path):
    result = run_camera_once(tmp_path, DRISHTI_GCS_ENDPOINT="gcs-emulator:9023")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        ("drishti-stream: invalid setting video.gcs_endpoint (DRISHTI_GCS_ENDPOINT) = 'gcs-emulator:9023': "
         "must be text matching ^https?://[^\\s/]+")]
