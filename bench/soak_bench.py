"""Soak benchmark: half an hour of clients coming, going and stalling; do the camera's memory or fds grow?

    .venv/bin/python bench/soak_bench.py [--minutes 30] [--window 5] [--clients 100] [--size 320x240]
                                         [--fps 30] [--churn 5] [--stall-every 5] [--procs 2]

Starts one camera (synthetic source). Most of the clients ("steady": bench/stream_clients.py's StreamClient,
in `--procs` processes of their own) stay connected the whole run and record each frame's id and latency
(receive time - frame timestamp). A churn process keeps the rest coming and going: every second it connects
`--churn` new clients, one in `--stall-every` of which reads its first frame and then nothing (the camera must
close it after its send_timeout; the stalled client reads again a while later and notes how its stream
ended), and as many reading ones as it connected leave, by a close frame, a bare FIN or a reset, in turn.
This process samples the camera's RSS, open fds and connected clients every 10 s and asks /health twice a
second.

Prints one row per window: steady clients' delivered fps, frame ids they lost (worst client) next to the ids
the camera itself skipped, which every client misses, latency p50/p99, churn counts, the slowest /health
answer, the load average; then the least-squares slope of RSS and fds per hour, fitted to the samples after
the first window (the warm-up), and their values before the clients came, during the run and after they
left. Loopback only; not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shlex
import signal
import socket
import struct
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import uvloop

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# imported after the sys.path tweak above, so the script also runs directly (python bench/soak_bench.py)
from bench.abuse_bench import health_ms  # noqa: E402
from bench.procstat import rss_mb  # noqa: E402
from bench.stream_bench import first_pass_done  # noqa: E402
from bench.stream_clients import StreamClient  # noqa: E402
from tests.service.abuse import RawWebSocket, open_fds  # noqa: E402
from tests.service.camera import Camera, metric_samples  # noqa: E402

SAMPLE_S = 10.0  # RSS, fds and connected clients
HEALTH_S = 0.5
LEAVES = ("close frame", "FIN", "reset")
NEVER = [float("inf"), float("inf")]  # a StreamClient window that records nothing
Client = TypeVar("Client", bound=StreamClient)


class SteadyClient(StreamClient):
    """A StreamClient that notes it was disconnected: a steady client never should be."""

    closed: str | None = None  # how, once it was

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = "EOF" if exc is None else type(exc).__name__


async def connect(camera: Camera, client: type[Client], window: list[float]) -> Client:
    """One reading client, its handshake done (a connection whose handshake fails or hangs is dropped)."""
    loop = asyncio.get_running_loop()
    _, stream = await asyncio.wait_for(
        loop.create_connection(lambda: client(camera.ws, window), "127.0.0.1", camera.port), 10)
    try:
        await asyncio.wait_for(stream.open, 10)
    except BaseException:
        stream.transport.abort()
        raise
    return stream


async def ready(reports: Any, starts: Any, role: str, count: int) -> list[float]:
    """Says this loader is connected and waits for the window boundaries (Unix times) from the parent (a
    loader whose parent is gone gives up: queue.Empty)."""
    reports.put((role, -1, count))
    boundaries: list[float] = await asyncio.get_running_loop().run_in_executor(None, starts.get, True, 300)
    return boundaries


async def steady(camera: Camera, count: int, reports: Any, starts: Any) -> None:
    """Keeps `count` clients connected; at each window boundary reports what each received in the window."""
    window = list(NEVER)
    clients = [await connect(camera, SteadyClient, window) for _ in range(count)]
    boundaries = await ready(reports, starts, "steady", count)
    window[:] = boundaries[0], boundaries[-1]
    last: list[int | None] = [None] * count
    for index, end in enumerate(boundaries[1:]):
        await asyncio.sleep(max(0.0, end - time.time()))
        rows, latencies = [], []
        for position, client in enumerate(clients):
            ids, client.ids = client.ids, []
            latencies.append(np.array(client.latencies, dtype=np.float32))
            client.latencies = []
            previous = last[position]
            steps = np.diff(np.array(([] if previous is None else [previous]) + ids, dtype=np.int64))
            last[position] = ids[-1] if ids else previous
            rows.append({"frames": len(ids), "lost": int((steps[steps > 1] - 1).sum()),
                         "disorder": int((steps < 1).sum()), "closed": client.closed})
        reports.put(("steady", index, {"clients": rows, "latencies": np.concatenate(latencies)}))
    for client in clients:
        client.transport.close()


def leave(client: StreamClient, how: str) -> None:
    """A reading client leaves: with a close frame, a bare FIN, or a reset (a process that died)."""
    connection = client.transport
    if connection.is_closing():
        return
    if how == "close frame":
        client.ws.send_close(1000)
        connection.write(b"".join(client.ws.data_to_send()))
    elif how == "reset":
        sock = connection.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.abort()
        return
    connection.close()


def stalled_end(stalled: RawWebSocket) -> str:
    """How a stalled client's stream ended, read once it reads again: the camera's close frame, the
    connection cut without one (the close frame was still queued behind unsent frames), or not at all."""
    try:
        close = stalled.close_frame(timeout=5)
    except TimeoutError:
        return "stalled still open"
    except OSError:
        close = None
    finally:
        stalled.close()
    return f"stalled got close {close.code}" if close else "stalled cut without close frame"


async def churn(camera: Camera, rate: int, stall_every: int, hold: float, reports: Any, starts: Any) -> None:
    """Every second `rate` clients join, one in `stall_every` of them stalling, and as many reading ones
    leave; a stalled client reads again after `hold` seconds to see how the camera ended its stream."""
    loop = asyncio.get_running_loop()
    readers: deque[StreamClient] = deque()
    stalled: deque[tuple[float, RawWebSocket]] = deque()
    checks: set[asyncio.Future[str]] = set()
    counts: Counter[str] = Counter()
    boundaries = await ready(reports, starts, "churn", 0)
    joined = left = 0
    pool = rate * 2  # reading churn clients stay about two seconds

    def counted(check: asyncio.Future[str]) -> None:
        checks.discard(check)
        failed = check.exception()
        counts[f"stalled check failed: {failed!r}" if failed else check.result()] += 1

    tick, index = boundaries[0], 0
    while tick < boundaries[-1]:
        await asyncio.sleep(max(0.0, tick - time.time()))
        while tick >= boundaries[index + 1]:
            reports.put(("churn", index, dict(counts)))
            counts.clear()
            index += 1
        stalls = sum(1 for n in range(joined, joined + rate) if n % stall_every == stall_every - 1)
        joined += rate
        while len(readers) > pool - (rate - stalls):
            leave(readers.popleft(), LEAVES[left % len(LEAVES)])
            counts[f"left ({LEAVES[left % len(LEAVES)]})"] += 1
            left += 1
        joins: list[Awaitable[StreamClient | RawWebSocket]] = [
            connect(camera, StreamClient, NEVER) for _ in range(rate - stalls)]
        joins += [loop.run_in_executor(None, RawWebSocket, camera) for _ in range(stalls)]
        for outcome in await asyncio.gather(*joins, return_exceptions=True):
            if isinstance(outcome, BaseException):
                counts[f"join failed: {type(outcome).__name__}"] += 1
            elif isinstance(outcome, RawWebSocket):
                stalled.append((tick, outcome))
                counts["joined stalled"] += 1
            else:
                readers.append(outcome)
                counts["joined reading"] += 1
        while stalled and stalled[0][0] + hold <= tick:
            check = loop.run_in_executor(None, stalled_end, stalled.popleft()[1])
            checks.add(check)
            check.add_done_callback(counted)
        tick += 1
    reports.put(("churn", index, dict(counts)))
    for client in readers:
        client.transport.close()
    for _, raw in stalled:
        raw.close()
    if checks:
        await asyncio.wait(checks, timeout=10)


def run_loader(target: Any, *args: Any) -> None:
    """A load process's entry: its own event loop, so the measuring process is never starved by it."""
    uvloop.run(target(*args))


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    clients: int
    load: float


def sample(camera: Camera) -> Sample:
    """The camera's RSS and fds (read before the /metrics request that counts its clients)."""
    pid = camera.process.pid
    rss, fds = rss_mb(pid), open_fds(pid)
    clients = sum(s.value for s in metric_samples(camera.metrics(), "drishti_clients_connected"))
    return Sample(time.time(), rss, fds, int(clients), os.getloadavg()[0])


def counters(camera: Camera) -> Counter[str]:
    """The camera's own counts: skipped and produced frame ids, and client disconnects by reason."""
    text = camera.metrics()
    found: Counter[str] = Counter()
    found["skipped"] = int(sum(s.value for s in metric_samples(text, "drishti_frames_skipped_total")))
    found["produced"] = int(sum(s.value for s in metric_samples(text, "drishti_frames_produced_total")))
    for s in metric_samples(text, "drishti_client_disconnects_total"):
        found[s.labels["reason"]] += int(s.value)
    return found


def window_row(index: int, seconds: float, steady: list[dict[str, Any]], churned: dict[str, int],
               camera: Counter[str], samples: list[Sample], slowest: float) -> dict[str, Any]:
    """One window's figures, from the loaders' reports, the camera's counters and the samples taken in it."""
    clients = [c for report in steady for c in report["clients"]]
    latencies = np.concatenate([report["latencies"] for report in steady]) * 1000
    fps = np.array([c["frames"] / seconds for c in clients])
    worst = max(c["lost"] for c in clients)
    return {
        "window": index + 1, "minutes": round(seconds / 60, 2), "steady": len(clients),
        "connected": f"{min(s.clients for s in samples)}-{max(s.clients for s in samples)}",
        "fps_min": round(float(fps.min()), 2), "fps_median": round(float(np.median(fps)), 2),
        "camera_fps": round(camera["produced"] / seconds, 2), "lost_worst": worst,
        "lost_total": sum(c["lost"] for c in clients), "camera_skipped": camera["skipped"],
        "lost_beyond_skipped": max(0, worst - camera["skipped"]),
        "disorder": sum(c["disorder"] for c in clients),
        "steady_closed": dict(Counter(c["closed"] for c in clients if c["closed"])),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies.size else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if latencies.size else None,
        "churn": churned,
        "disconnects": {k: v for k, v in camera.items() if k not in ("skipped", "produced")},
        "health_max_ms": round(slowest, 1),
        "load": f"{np.mean([s.load for s in samples]):.2f}/{max(s.load for s in samples):.2f}",
        "rss_mb": f"{samples[0].rss_mb:.1f}-{samples[-1].rss_mb:.1f}",
        "fds": f"{min(s.fds for s in samples)}-{max(s.fds for s in samples)}",
    }


COLUMNS = ["window", "connected", "steady fps min/median (closed)", "camera fps",
           "ids lost: worst steady client / camera skipped / beyond", "p50 ms", "p99 ms", "joins (stalled)",
           "leaves", "stalled closed by camera", "/health max ms", "load 1 min mean/max", "RSS MB", "fds"]


def print_table(rows: list[dict[str, Any]]) -> None:
    print("\n| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        churned = r["churn"]
        joins = churned.get("joined reading", 0) + churned.get("joined stalled", 0)
        leaves = sum(v for k, v in churned.items() if k.startswith("left"))
        cells = [r["window"], r["connected"],
                 f"{r['fps_min']}/{r['fps_median']} ({sum(r['steady_closed'].values())})", r["camera_fps"],
                 f"{r['lost_worst']} / {r['camera_skipped']} / {r['lost_beyond_skipped']}", r["p50_ms"],
                 r["p99_ms"], f"{joins} ({churned.get('joined stalled', 0)})", leaves,
                 r["disconnects"].get("send_timeout", 0), r["health_max_ms"], r["load"], r["rss_mb"],
                 r["fds"]]
        print("| " + " | ".join(map(str, cells)) + " |")


def slopes(samples: list[Sample], since: float) -> None:
    """Least-squares slopes per hour of RSS, fds, and fds not held by a connected client, over the samples
    from `since` on (all of them when there are too few)."""
    used = [s for s in samples if s.at >= since]
    used = used if len(used) >= 3 else samples
    hours = (np.array([s.at for s in used]) - used[0].at) / 3600
    print(f"\nslopes over {len(used)} of {len(samples)} samples (every {SAMPLE_S:g}s), those from "
          f"{used[0].at - samples[0].at:.0f}s to {used[-1].at - samples[0].at:.0f}s into the run"
          f"{' (after the first window: warm-up)' if used is not samples else ''}:")
    series: list[tuple[str, list[float], str]] = [
        ("RSS", [s.rss_mb for s in used], "MB"), ("fds", [s.fds for s in used], "fds"),
        ("fds - connected clients", [s.fds - s.clients for s in used], "fds")]
    for name, values, unit in series:
        slope, _ = np.polyfit(hours, values, 1)
        print(f"- {name}: {slope:+.2f} {unit}/h (samples {min(values):.1f} to {max(values):.1f}, "
              f"first {values[0]:.1f}, last {values[-1]:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=5.0, help="minutes per reported window")
    parser.add_argument("--clients", type=int, default=100, help="about this many connected at any time")
    parser.add_argument("--size", default="320x240", help="synthetic source size")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--churn", type=int, default=5, help="clients joining (and leaving) per second")
    parser.add_argument("--stall-every", type=int, default=5, help="one joining client in this many stalls")
    parser.add_argument("--procs", type=int, default=2, help="processes for the steady clients")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as Ctrl-C: the finally below stops the camera
    seconds = args.minutes * 60
    edges = np.append(np.arange(0, seconds, args.window * 60), seconds)
    # the churn holds about 2 s of its reading clients and the stalled ones the camera has not closed yet
    # (send_timeout, 5 s by default, and a grace), one a second: about 3 s of joiners
    steady_count = args.clients - 3 * args.churn
    shares = [steady_count // args.procs + (i < steady_count % args.procs) for i in range(args.procs)]
    reports: multiprocessing.Queue[tuple[str, int, Any]] = multiprocessing.Queue()
    starts: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    loaders: list[multiprocessing.Process] = []
    with tempfile.TemporaryDirectory(prefix="drishti-soak-bench-") as workdir:
        camera = Camera.start(Path(workdir), DRISHTI_VIDEO_PATH=f"synthetic:{args.size}",
                              DRISHTI_FPS=str(args.fps), DRISHTI_LOG_LEVEL="error",
                              DRISHTI_MAX_CLIENTS=str(args.clients * 2))
        try:
            while not first_pass_done(camera.http):
                time.sleep(0.5)
            print(f"command: {shlex.join(['.venv/bin/python', 'bench/soak_bench.py', *sys.argv[1:]])}")
            print(f"machine: {' '.join(platform.uname())}; nproc {os.cpu_count()}; load average "
                  f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
            print(f"camera: synthetic:{args.size} at {args.fps} fps, max_clients {args.clients * 2}, other "
                  f"settings at their defaults (send_timeout 5s); {steady_count} steady clients in "
                  f"{args.procs} processes; churn {args.churn}/s, one in {args.stall_every} stalling; "
                  f"{args.minutes:g} min in windows of {args.window:g} min", flush=True)
            time.sleep(2)
            before = sample(camera)
            hwm_before = rss_mb(camera.process.pid, "VmHWM")
            hold = 20.0  # a stalled client reads again after this: past send_timeout and the close grace
            loads: list[tuple[Any, ...]] = [(steady, camera, share, reports, starts) for share in shares]
            loads.append((churn, camera, args.churn, args.stall_every, hold, reports, starts))
            loaders += [multiprocessing.Process(target=run_loader, args=load, daemon=True) for load in loads]
            for loader in loaders:
                loader.start()
            for _ in loaders:
                reports.get(timeout=120)
            boundaries = list(time.time() + 5 + edges)
            for _ in loaders:
                starts.put(boundaries)
            time.sleep(max(0.0, boundaries[0] - time.time()))
            base = counters(camera)
            samples: list[Sample] = []
            pending: dict[int, list[tuple[str, Any]]] = {}
            rows = []
            for index, end in enumerate(boundaries[1:]):
                slowest, next_sample, taken = 0.0, time.time(), len(samples)
                while time.time() < end:
                    if camera.process.poll() is not None:
                        raise RuntimeError(f"the camera exited with {camera.process.returncode}")
                    if time.time() >= next_sample:
                        samples.append(sample(camera))
                        next_sample += SAMPLE_S
                    slowest = max(slowest, health_ms(camera.http))
                    time.sleep(max(0.0, min(HEALTH_S, end - time.time())))
                now = counters(camera)
                while len(pending.get(index, [])) < len(loaders):
                    role, at, report = reports.get(timeout=120)
                    pending.setdefault(at, []).append((role, report))
                got = pending.pop(index)
                row = window_row(index, end - boundaries[index], [r for role, r in got if role == "steady"],
                                 next(r for role, r in got if role == "churn"), now - base,
                                 samples[taken:], slowest)
                base = now
                rows.append(row)
                print(json.dumps(row), flush=True)
            for loader in loaders:
                loader.join(60)
            settle_started = time.monotonic()
            while open_fds(camera.process.pid) > before.fds and time.monotonic() - settle_started < 60:
                time.sleep(0.2)
            settled = time.monotonic() - settle_started
            after = sample(camera)
            print_table(rows)
            slopes(samples, boundaries[1])
            print(f"\nbefore the clients: RSS {before.rss_mb:.1f} MB, {before.fds} fds; during: RSS "
                  f"{min(s.rss_mb for s in samples):.1f}-{max(s.rss_mb for s in samples):.1f} MB, "
                  f"{min(s.fds for s in samples)}-{max(s.fds for s in samples)} fds; after they left: RSS "
                  f"{after.rss_mb:.1f} MB, {after.fds} fds ({after.clients} clients, settled in "
                  f"{settled:.1f}s); peak RSS (VmHWM) {hwm_before:.1f} -> "
                  f"{rss_mb(camera.process.pid, 'VmHWM'):.1f} MB; camera alive: "
                  f"{'yes' if camera.process.poll() is None else 'NO'}")
        finally:
            for loader in loaders:
                if loader.is_alive():
                    loader.terminate()
                    loader.join(10)
            camera.stop()
            for channel in (reports, starts):
                channel.cancel_join_thread()


if __name__ == "__main__":
    main()
