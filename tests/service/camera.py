"""Test support: a real camera process on a free port, and test videos made on the spot."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
from drishti_stream.sources.synthetic import SyntheticSource
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hack.cluster.testing import wait_until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]


def camera_env(**settings: str) -> dict[str, str]:
    """A clean environment for a camera: no DRISHTI_* or PORT from the caller, the given settings added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRISHTI_", "OTEL_")) and k != "PORT"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "service"), env.get("PYTHONPATH", "")])
    env.update(settings)
    return env


def run_camera_once(cwd: Path, timeout: float = 30, **settings: str) -> subprocess.CompletedProcess[str]:
    """Runs a camera expected to fail at start; returns its exit status and output."""
    settings.setdefault("DRISHTI_CACHE_DIR", str(cwd / "cache"))
    return subprocess.run([sys.executable, "-m", "drishti_stream"], cwd=cwd, env=camera_env(**settings),
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Camera:
    """A running `python -m drishti_stream` process."""

    port: int
    process: subprocess.Popen[str]
    log: Path
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/stream"

    @classmethod
    def start(cls, workdir: Path, port_variable: str = "DRISHTI_PORT", **settings: str) -> Camera:
        """Starts a camera in `workdir` on a free port, given to it in `port_variable` (or `PORT`)."""
        port = int(settings.pop(port_variable, 0)) or free_port()
        env = camera_env(**{port_variable: str(port)}, DRISHTI_HOST="127.0.0.1",
                         DRISHTI_CACHE_DIR=str(workdir / "cache"), **settings)
        log = workdir / f"camera-{port}.log"
        process = subprocess.Popen([sys.executable, "-m", "drishti_stream"], cwd=workdir, env=env,
                                   stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
        camera = cls(port, process, log, settings)
        camera.wait_ready()
        return camera

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(self._ready, timeout, 0.1, what=lambda: f"camera /ready:\n{self.output()}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"camera exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.http}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def info(self) -> dict:
        return httpx.get(self.http + "/", timeout=5).json()

    def metrics(self) -> str:
        return httpx.get(self.http + "/metrics", timeout=5).text

    def sample(self, name: str, **labels: str) -> float:
        """The value of one sample on /metrics, by name and labels (0 when it has not appeared yet)."""
        return sum(sample.value for sample in metric_samples(self.metrics(), name, **labels))

    def skipped(self) -> float:
        return self.sample("drishti_frames_skipped_total")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def metric_samples(text: str, name: str, **labels: str) -> list[Sample]:
    """The samples of Prometheus text with this name (`..._total` for a counter) and at least these labels."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()]


def write_video(path: Path, frames: int, fps: float = 10, size: tuple[int, int] = (320, 240),
                fourcc: str = "mp4v") -> Path:
    """A video whose frame i is the synthetic scene's frame i (its barcode says i), small and quick to
    make."""
    scene = SyntheticSource(*size)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert writer.isOpened(), f"cannot write {path} with {fourcc}"
    for index in range(frames):
        writer.write(scene.read(index))
    writer.release()
    return path


@dataclass
class Received:
    at: float
    message: dict

    @property
    def image(self):
        import base64

        import numpy as np

        jpeg = base64.b64decode(self.message["image"], validate=True)
        return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


async def collect(url: str, count: int | None = None, seconds: float | None = None) -> list[Received]:
    """Receives messages with a stock `websockets` client until `count` arrived or `seconds` passed."""
    import asyncio
    import json

    import websockets

    received: list[Received] = []
    async with websockets.connect(url) as ws:
        deadline = time.monotonic() + (seconds if seconds is not None else 60)
        while count is None or len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                break
            received.append(Received(time.time(), json.loads(raw)))
    return received


def assert_every_frame_sent(received: list[Received], skipped: float) -> None:
    """Ids strictly increase and the only ones missing are those the camera itself skipped (a starved CPU
    makes the camera skip ids to stay on the wall clock; the client must lose nothing else)."""
    ids = [r.message["frame_id"] for r in received]
    assert ids == sorted(set(ids)), "frame ids strictly increase"
    assert (ids[-1] - ids[0] + 1) - len(ids) <= skipped, f"missed ids beyond the {skipped:g} skipped: {ids}"


def assert_on_time(received: list[Received], fps: int) -> None:
    """Frames arrive within one frame period of their due time (checked at the 95th percentile, with a
    hard bound of three periods, so a test machine's scheduling hiccup does not fail the check)."""
    import numpy as np

    latencies = np.array([r.at - r.message["timestamp"] for r in received])
    assert latencies.min() > -0.005, "no frame is sent before it is due"
    assert np.percentile(latencies, 95) < 1 / fps, f"p95 latency {np.percentile(latencies, 95):.4f}s"
    assert latencies.max() < 3 / fps, f"max latency {latencies.max():.4f}s"
