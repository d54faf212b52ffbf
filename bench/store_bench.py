"""Frame store benchmark: what a camera costs per video, side by side with another checkout's camera.

    .venv/bin/python bench/store_bench.py [--baseline DIR] [--only 1080p,2160p,restart,replicas]

`--baseline DIR` names another checkout's `service/` directory (e.g. a worktree of an older commit), run the
same way. Test videos are made once from the synthetic scene (MPEG-4 part 2) and cached in
$DRISHTI_CACHE_DIR/bench. Every camera gets a fresh cache directory of its own (a "restart" reuses it).

- 1080p: a 1920x1080, 30 fps, 60 s video and one client: time to ready; CPU (% of one core) over the first
  loop and over the second; RSS at the end of the second loop, anonymous and file-backed (the store's mapped
  page cache) apart; frames encoded.
- restart: the 1080p camera stopped and started again on the same cache directory: time to ready, CPU in
  the first 10 s, frames encoded.
- 2160p: a 3840x2160, 30 fps, 10 s video and one client for 15 s from start: ids skipped by the camera
  after its first second, and ids the client missed.
- replicas: two cameras on one cache directory, started together: frames encoded in total.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import httpx
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.procstat import cpu_seconds  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.service.camera import metric_samples  # noqa: E402

EPOCH = "1700000000"


def video(width: int, height: int, seconds: int) -> Path:
    """A cached test video of the synthetic scene (its frames loop every 10 s)."""
    sys.path.insert(0, str(REPO / "service"))
    from drishti_stream.sources.synthetic import SyntheticSource

    cache = Path(os.environ.get("DRISHTI_CACHE_DIR", Path.home() / ".cache" / "drishti")) / "bench"
    path = cache / f"scene-{width}x{height}-{seconds}s.mp4"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        scene = SyntheticSource(width, height)
        partial = path.with_suffix(".partial.mp4")
        writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), 30, (width, height))
        for index in range(seconds * 30):
            writer.write(scene.read(index))
        writer.release()
        partial.rename(path)
    return path


def rss_parts_mb(pid: int) -> dict[str, float]:
    """Resident memory by kind: anonymous (the process's own) and file-backed (mapped page cache)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {kind: round(int(status[key].split()[0]) / 1024, 1)
            for kind, key in (("rss", "VmRSS"), ("anon", "RssAnon"), ("file", "RssFile"))}


@dataclass
class Camera:
    process: subprocess.Popen[bytes]
    port: int
    started: float
    ready_s: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample(self, name: str) -> float | None:
        samples = metric_samples(httpx.get(f"{self.base}/metrics").text, name)
        return sum(s.value for s in samples) if samples else None

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start(service: Path, cache: Path, path: Path, wait: bool = True) -> Camera:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRISHTI_", "OTEL_"))}
    env.update(DRISHTI_PORT=str(port), DRISHTI_HOST="127.0.0.1", DRISHTI_VIDEO_PATH=str(path),
               DRISHTI_FPS="30", DRISHTI_EPOCH=EPOCH, DRISHTI_CACHE_DIR=str(cache),
               DRISHTI_LOG_LEVEL="warning", PYTHONPATH=str(service))
    cache.mkdir(parents=True, exist_ok=True)
    # in a directory of its own: a checkout's config.yaml is not this camera's
    camera = Camera(subprocess.Popen([sys.executable, "-m", "drishti_stream"], env=env, cwd=cache), port,
                    time.time())
    if wait:
        wait_ready(camera)
    return camera


def wait_ready(camera: Camera) -> None:
    while True:
        try:
            if httpx.get(f"{camera.base}/ready", timeout=1).status_code == 200:
                camera.ready_s = round(time.time() - camera.started, 2)
                return
        except httpx.HTTPError:
            pass
        if camera.process.poll() is not None:
            raise RuntimeError("camera exited")
        time.sleep(0.02)


@dataclass
class Client:
    """One consumer in a thread: the frame ids it received."""

    url: str
    ids: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with connect(self.url, max_size=None) as ws:
            while not self._stop.is_set():
                message = ws.recv()
                self.ids.append(json.loads(message[:200].split(',"image"')[0] + "}")["frame_id"])

    def missed(self) -> int:
        return sum(b - a - 1 for a, b in zip(self.ids, self.ids[1:]))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def cpu_over(camera: Camera, seconds: float) -> float:
    before = camera.cpu()
    time.sleep(seconds)
    return round(100 * (camera.cpu() - before) / seconds, 1)


def loops_1080p(service: Path, cache: Path) -> dict[str, object]:
    camera = start(service, cache, video(1920, 1080, 60))
    client = Client(f"ws://127.0.0.1:{camera.port}/ws/stream")
    row: dict[str, object] = {"ready_s": camera.ready_s, "cpu_first_loop": cpu_over(camera, 60),
                              "cpu_second_loop": cpu_over(camera, 60), **rss_parts_mb(camera.process.pid),
                              "encoded": camera.sample("drishti_frames_encoded_total"),
                              "client_missed": client.missed()}
    client.stop()
    camera.stop()
    return row


def restart_1080p(service: Path, cache: Path) -> dict[str, object]:
    camera = start(service, cache, video(1920, 1080, 60))  # the cache directory of the 1080p run
    client = Client(f"ws://127.0.0.1:{camera.port}/ws/stream")
    row: dict[str, object] = {"ready_s": camera.ready_s, "cpu_first_10s": cpu_over(camera, 10),
                              **rss_parts_mb(camera.process.pid),
                              "encoded": camera.sample("drishti_frames_encoded_total")}
    client.stop()
    camera.stop()
    return row


def keeps_up_2160p(service: Path, cache: Path) -> dict[str, object]:
    camera = start(service, cache, video(3840, 2160, 10))
    client = Client(f"ws://127.0.0.1:{camera.port}/ws/stream")
    time.sleep(1)
    skipped_at_1s = camera.sample("drishti_frames_skipped_total") or 0.0
    cpu = cpu_over(camera, 14)
    row: dict[str, object] = {
        "ready_s": camera.ready_s, "skipped_after_1s": (camera.sample("drishti_frames_skipped_total") or 0)
        - skipped_at_1s, "client_frames": len(client.ids), "client_missed_after_1s": sum(
            b - a - 1 for a, b in zip(client.ids[30:], client.ids[31:])), "cpu": cpu,
        "peak_rss_mb": round(int(next(line for line in Path(f"/proc/{camera.process.pid}/status").read_text()
                                      .splitlines() if line.startswith("VmHWM")).split()[1]) / 1024, 1),
        "encoded": camera.sample("drishti_frames_encoded_total")}
    client.stop()
    camera.stop()
    return row


def store_complete(camera: Camera) -> bool:
    return bool(httpx.get(f"{camera.base}/").json().get("frame_store", {}).get("state") == "complete")


def replicas(service: Path, cache: Path) -> dict[str, object]:
    path = video(1920, 1080, 60)
    cameras = [start(service, cache, path, wait=False) for _ in range(2)]
    for camera in cameras:
        wait_ready(camera)
    deadline = time.time() + 180
    while time.time() < deadline and not all(map(store_complete, cameras)):
        time.sleep(1)
    counts = [camera.sample("drishti_frames_encoded_total") for camera in cameras]
    for camera in cameras:
        camera.stop()
    return {"encoded_each": counts, "encoded_total": sum(c or 0 for c in counts), "frames": 1800,
            "ready_s": [c.ready_s for c in cameras]}


SCENARIOS = {"1080p": loops_1080p, "restart": restart_1080p, "2160p": keeps_up_2160p, "replicas": replicas}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout's service/ directory")
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args = parser.parse_args()
    services = {"this": REPO / "service", **({"baseline": args.baseline} if args.baseline else {})}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    for width, height, seconds in ((1920, 1080, 60), (3840, 2160, 10)):
        video(width, height, seconds)
    with tempfile.TemporaryDirectory(prefix="drishti-store-bench-") as scratch:
        for scenario in args.only.split(","):
            for label, service in services.items():
                if scenario == "replicas" and label == "baseline":
                    continue  # no store to share: each replica encodes every frame on every loop
                cache = Path(scratch) / label / ("1080p" if scenario == "restart" else scenario)
                row = SCENARIOS[scenario](service, cache)
                print(json.dumps({"scenario": scenario, "camera": label, **row}), flush=True)


if __name__ == "__main__":
    main()
