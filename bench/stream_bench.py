"""Stream benchmark: one 1280x720, 30 fps, quality 85 camera and N clients in separate processes.

    .venv/bin/python bench/stream_bench.py [--clients 1,100,300,500] [--seconds 10] [--procs 3]
                                           [--baseline DIR] [--rounds 1]

With `--baseline DIR` (another checkout's `service/` directory, e.g. a worktree of an older commit) both
cameras run side by side, each N measured on one and then the other, `--rounds` times, alternating which goes
first, so a drift in the machine's state touches both alike.

Reports per-client delivered fps (min, median), latency (receive time - frame timestamp) p50/p99 and the
worst client's p99, frame ids the camera skipped, server CPU (% of one core) and RSS, client-side CPU and the
whole machine's busy CPU (% of one core; loopback TCP work partly lands in softirq time that no process is
charged for); idle CPU after the first loop;
and each N again with one stalled client (never reads) added. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# imported after the sys.path tweak above, so the script also runs directly (python bench/stream_bench.py)
from bench.procstat import cpu_seconds, machine_busy_seconds, rss_mb  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.service.camera import metric_samples  # noqa: E402


def skipped_frames(port: int) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return sum(sample.value for sample in metric_samples(metrics, "drishti_frames_skipped_total"))


def start_camera(port: int, service: Path, cache: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRISHTI_")}
    env.update(DRISHTI_PORT=str(port), DRISHTI_HOST="127.0.0.1", DRISHTI_VIDEO_PATH="synthetic:1280x720",
               DRISHTI_FPS="30", DRISHTI_JPEG_QUALITY="85", DRISHTI_MAX_CLIENTS="5000",
               DRISHTI_LOG_LEVEL="warning", DRISHTI_CACHE_DIR=str(cache), PYTHONPATH=str(service))
    cache.mkdir(parents=True)
    # in a directory of its own: a checkout's config.yaml is not this camera's
    camera = subprocess.Popen([sys.executable, "-m", "drishti_stream"], env=env, cwd=cache)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            if camera.poll() is not None:
                raise RuntimeError(f"the camera from {service} exited with {camera.returncode}") from None
            time.sleep(0.2)
    while not first_pass_done(base):
        time.sleep(0.5)  # every frame is encoded once; from now on they are reused
    return camera


def first_pass_done(base: str) -> bool:
    """Whether the camera encodes nothing any more: its frame store is complete (or, for a camera from
    before the store, its in-memory frame cache has been hit)."""
    store = httpx.get(f"{base}/").json().get("frame_store")
    if store is not None:
        return bool(store["state"] == "complete")
    return "drishti_frame_cache_hits_total 0.0" not in httpx.get(f"{base}/metrics").text


def stall(port: int) -> socket.socket:
    """A client that completes the handshake and then never reads."""
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/stream"))
    sock = socket.create_connection(("127.0.0.1", port))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    return sock


def measure(camera: subprocess.Popen, port: int, clients: int, procs: int, seconds: float,
            stalled: bool) -> dict:
    url = f"ws://127.0.0.1:{port}/ws/stream"
    shares = [clients // procs + (i < clients % procs) for i in range(procs)]
    loaders = [subprocess.Popen([sys.executable, str(REPO / "bench" / "stream_clients.py"), url, str(n)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for n in shares if n]
    for loader in loaders:
        json.loads(loader.stdout.readline())
    stuck = stall(port) if stalled else None
    time.sleep(1.0)
    start = time.time() + 0.5
    for loader in loaders:
        loader.stdin.write(f"{start} {start + seconds}\n")
        loader.stdin.flush()
    time.sleep(max(0.0, start - time.time()))
    server_cpu, client_cpu = cpu_seconds(camera.pid), sum(cpu_seconds(p.pid) for p in loaders)
    machine_cpu, skipped = machine_busy_seconds(), skipped_frames(port)
    time.sleep(seconds)
    server_cpu = cpu_seconds(camera.pid) - server_cpu
    client_cpu = sum(cpu_seconds(p.pid) for p in loaders) - client_cpu
    machine_cpu = machine_busy_seconds() - machine_cpu
    skipped = skipped_frames(port) - skipped
    rss = rss_mb(camera.pid)
    results = [c for loader in loaders
               for c in json.loads(loader.communicate()[0].splitlines()[-1])["clients"]]
    if stuck:
        stuck.close()
    fps = np.array([len(c["ids"]) / seconds for c in results])
    latencies = np.concatenate([c["latencies"] for c in results]) * 1000
    worst_p99 = max(np.percentile(c["latencies"], 99) * 1000 for c in results if c["latencies"])
    gaps = sum(sum(1 for a, b in zip(c["ids"], c["ids"][1:]) if b != a + 1) for c in results)
    return {
        "clients": clients, "stalled": stalled, "fps_min": round(float(fps.min()), 2),
        "fps_median": round(float(np.median(fps)), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "latency_p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "worst_client_p99_ms": round(worst_p99, 2),
        "frame_gaps": gaps, "server_cpu_pct": round(100 * server_cpu / seconds, 1),
        "server_rss_mb": round(rss, 1), "client_cpu_pct": round(100 * client_cpu / seconds, 1),
        "machine_cpu_pct": round(100 * machine_cpu / seconds, 1), "server_skipped": int(skipped),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,100,300,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=3, help="client processes")
    parser.add_argument("--no-stalled", action="store_true", help="skip the runs with a stalled client")
    parser.add_argument("--baseline", type=Path, help="another checkout's service/ directory, side by side")
    parser.add_argument("--rounds", type=int, default=1, help="measurements of each N on each camera")
    args = parser.parse_args()
    services = {"this": REPO / "service", **({"baseline": args.baseline} if args.baseline else {})}
    cameras: dict[str, tuple[subprocess.Popen, int]] = {}
    with tempfile.TemporaryDirectory(prefix="drishti-stream-bench-") as scratch:
        try:
            for label, service in services.items():
                port = free_port()
                cameras[label] = (start_camera(port, service, Path(scratch) / label), port)
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.2f}")
            for label, (camera, _) in cameras.items():
                before = cpu_seconds(camera.pid)
                time.sleep(args.seconds)
                idle = 100 * (cpu_seconds(camera.pid) - before) / args.seconds
                print(f"{label} (pid {camera.pid}): idle (no clients, after the first pass): server CPU "
                      f"{idle:.1f}% of one core, RSS {rss_mb(camera.pid):.0f} MB", flush=True)
            rows = []
            labels = list(cameras)
            for n in map(int, args.clients.split(",")):
                for stalled in (False,) if args.no_stalled else (False, True):
                    for round_ in range(args.rounds):
                        for label in labels[round_ % 2:] + labels[:round_ % 2]:
                            camera, port = cameras[label]
                            row = {"camera": label, **measure(camera, port, n, args.procs, args.seconds,
                                                               stalled)}
                            rows.append(row)
                            print(json.dumps(row), flush=True)
            print_table(rows)
            for label, (camera, _) in cameras.items():
                print(f"{label}: peak server RSS {rss_mb(camera.pid, 'VmHWM'):.0f} MB")
        finally:
            for camera, _ in cameras.values():
                camera.terminate()
                camera.wait(10)


def print_table(rows: list[dict]) -> None:
    print("\n| camera | clients | stalled | fps min | fps median | p50 ms | p99 ms | worst p99 ms | gaps | "
          "skipped | server CPU % | server RSS MB | client CPU % | machine CPU % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['camera']} | {r['clients']} | {'+1' if r['stalled'] else '-'} | {r['fps_min']} | "
              f"{r['fps_median']} | {r['latency_p50_ms']} | {r['latency_p99_ms']} | "
              f"{r['worst_client_p99_ms']} | {r['frame_gaps']} | {r['server_skipped']} | "
              f"{r['server_cpu_pct']} | {r['server_rss_mb']} | {r['client_cpu_pct']} | "
              f"{r['machine_cpu_pct']} |")


if __name__ == "__main__":
    main()
