"""Abuse benchmark: what each kind of abuse costs a camera's healthy clients, its sockets and its memory.

    .venv/bin/python bench/abuse_bench.py [--clients 5] [--seconds 8] [--size 320x240] [--fps 30]

Starts one camera (synthetic source) and, for a baseline window and then one window per abuse, connects N
healthy clients (bench/stream_clients.py, a process of their own) and measures their delivered fps, frame ids
lost and latency p50/p99, while a separate process runs the abuse: WebSocket protocol violations, a ping
flood, 100 MB messages, a slowloris set, a flood of clients beyond max_clients, connect/disconnect churn.
Meanwhile this process asks /health every 200 ms. Prints one table: what was tried, the healthy side (fps;
frame ids missing, worst client, next to the ids the camera itself skipped, which every client misses; p99
and its change against the baseline), the camera's open fds and RSS before and after (after
the fds settled back, how long that took) and the slowest /health answer. Loopback only; not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# imported after the sys.path tweak above, so the script also runs directly (python bench/abuse_bench.py)
from bench.procstat import rss_mb  # noqa: E402
from bench.stream_bench import skipped_frames  # noqa: E402
from tests.service.abuse import (  # noqa: E402
    RawWebSocket,
    frame,
    open_fds,
    response_head,
    upgrade_request,
)
from tests.service.camera import Camera  # noqa: E402

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9
VIOLATIONS = [
    frame(TEXT, b"hi", masked=False), frame(0x3, b"x"), frame(0xB, b"x"), frame(TEXT, b"x", rsv=0b100),
    frame(PING, b"x", fin=False), frame(PING, b"p" * 126), frame(CONT, b"x"),
    frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), frame(CLOSE, (999).to_bytes(2, "big")),
    frame(TEXT, b"\xff\xfe"), frame(TEXT, b"\xc3", fin=False) + frame(CONT, b"("),
    frame(BINARY, bytes(64 * 1024 + 1)),
]
BAD_UPGRADES = [upgrade_request(Sec_WebSocket_Version="12"), upgrade_request(Sec_WebSocket_Key=None),
                upgrade_request(X_Padding="a" * 10_000), upgrade_request(Sec_WebSocket_Extensions="x\x01")]


def _camera(port: int) -> SimpleNamespace:
    """What RawWebSocket needs of a camera."""
    return SimpleNamespace(port=port, ws=f"ws://127.0.0.1:{port}/ws/stream")


def idle(port: int, seconds: float) -> str:
    time.sleep(seconds)
    return "nothing"


def violations(port: int, seconds: float) -> str:
    """RFC 6455 violations on fresh connections, and malformed upgrades, round after round."""
    codes: Counter[int | None] = Counter()
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for data in VIOLATIONS:
            client = RawWebSocket(_camera(port))  # type: ignore[arg-type]
            client.sock.sendall(data)
            close = client.close_frame()
            codes[close.code if close else None] += 1
            client.close()
        for request in BAD_UPGRADES:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(request)
                statuses[response_head(sock)[0]] += 1
    closes = ", ".join(f"{count}x{code}" for code, count in sorted(codes.items(), key=str))
    answers = ", ".join(f"{count}x{status}" for status, count in sorted(statuses.items()))
    return f"{sum(codes.values())} bad frames ({closes}); {sum(statuses.values())} bad upgrades ({answers})"


def ping_flood(port: int, seconds: float) -> str:
    """One client floods pings and reads its pongs; another floods pings and reads nothing."""
    reader, mute = RawWebSocket(_camera(port)), RawWebSocket(_camera(port))  # type: ignore[arg-type]
    for client in (reader, mute):
        client.sock.setblocking(False)
    batch = frame(PING, b"p" * 125) * 200
    read_bytes = pongs = mute_bytes = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, writable, _ = select.select([reader.sock], [reader.sock, mute.sock], [], 0.05)
        if reader.sock in readable:
            with contextlib.suppress(BlockingIOError):
                reader.protocol.receive_data(reader.sock.recv(1 << 20))
                pongs += sum(1 for event in reader.protocol.events_received() if event.opcode.name == "PONG")
        for sock in writable:
            try:
                sent = sock.send(batch)
            except OSError:
                continue
            if sock is reader.sock:
                read_bytes += sent
            else:
                mute_bytes += sent
    reader.close()
    mute.close()
    return (f"a reading client sent {read_bytes / 2**20:.1f} MB of pings, got {pongs} pongs; "
            f"{mute_bytes / 2**20:.1f} MB of pings taken from a client that reads no pong")


def big_message(port: int, seconds: float) -> str:
    """100 MB messages, as one frame and as 60 kB fragments, again and again: how much gets in before the
    camera cuts each off."""
    total, chunk = 100 << 20, 60_000
    heads = {"frame": frame(BINARY, length=total),
             "fragments": frame(BINARY, bytes(chunk), fin=False) + frame(CONT, bytes(chunk), fin=False)[:8]}
    attempts, taken, codes = 0, [], Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for head in heads.values():
            client = RawWebSocket(_camera(port))  # type: ignore[arg-type]
            client.sock.sendall(head)
            close = client.close_frame()
            codes[close.code if close else None] += 1
            sent = len(head)
            try:
                while sent < total:
                    sent += client.sock.send(bytes(chunk))
            except OSError:
                pass
            taken.append(sent)
            attempts += 1
            client.close()
    return (f"{attempts} x 100 MB ({', '.join(f'{n}x{c}' for c, n in codes.items())}); at most "
            f"{max(taken) / 2**20:.2f} MB sent before the cut")


def slowloris(port: int, seconds: float) -> str:
    """200 requests and 50 upgrades trickled a byte per 100 ms each, 50 silent connections; each one the
    camera closes is opened again."""
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
    upgrade = upgrade_request()[:-2] + b"X-Slow: " + b"a" * 4096
    kinds = [head] * 200 + [upgrade] * 50 + [b""] * 50
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in kinds]
    sent = [0] * len(kinds)
    closed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for index, data in enumerate(kinds):
            try:
                if data:
                    socks[index].send(data[sent[index]:sent[index] + 1])
                    sent[index] += 1
                else:
                    socks[index].setblocking(False)
                    if socks[index].recv(1) == b"":
                        raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
                socks[index].close()
                socks[index] = socket.create_connection(("127.0.0.1", port))
                sent[index] = 0
        time.sleep(0.1)
    for sock in socks:
        sock.close()
    return f"{len(kinds)} slow connections held for {seconds:g}s; {closed} closed by the camera and reopened"


def connection_flood(port: int, seconds: float) -> str:
    """Waves of 300 WebSocket clients at once, beyond max_clients."""
    import websockets

    async def one() -> int | None:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream", open_timeout=20) as ws:
                try:
                    async with asyncio.timeout(1):
                        while True:
                            await ws.recv()
                except websockets.ConnectionClosed as closed:
                    return closed.rcvd.code if closed.rcvd else None
                except TimeoutError:
                    return 0  # admitted
        except (OSError, TimeoutError, websockets.InvalidHandshake):
            return None

    async def waves() -> Counter[int | None]:
        outcomes: Counter[int | None] = Counter()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcomes.update(await asyncio.gather(*(one() for _ in range(300))))
        return outcomes

    outcomes = asyncio.run(waves())
    return (f"{sum(outcomes.values())} clients: {outcomes.get(1013, 0)} refused with 1013, "
            f"{outcomes.get(0, 0)} admitted, {outcomes.get(None, 0)} failed to connect")


def churn(port: int, seconds: float) -> str:
    """Connect and disconnect, 10 at a time: WebSocket clients that take a frame and close or vanish (RST),
    HTTP requests, bare TCP connections."""
    import websockets

    async def cycles() -> int:
        done = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                kind = done % 4
                if kind == 0:
                    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
                        await ws.recv()
                elif kind == 1:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(upgrade_request())
                    await reader.readuntil(b"\r\n\r\n")
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                elif kind == 2:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    await reader.readuntil(b"\r\n\r\n")
                    writer.close()
                else:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                done += 1

        await asyncio.gather(*(worker() for _ in range(10)))
        return done

    return f"{asyncio.run(cycles())} connect/disconnect cycles"


COLUMNS = ["abuse", "tried", "healthy fps (min)", "ids missing (worst client)", "camera skipped", "p50 ms",
           "p99 ms (vs baseline)", "/health slowest ms", "camera fds before -> after (settled in)",
           "RSS MB before -> after (peak growth)", "alive"]

ABUSES: dict[str, Callable[[int, float], str]] = {
    "baseline": idle,
    "WS protocol violations": violations,
    "ping flood": ping_flood,
    "100 MB message": big_message,
    "slowloris": slowloris,
    "connection flood": connection_flood,
    "connect/disconnect churn": churn,
}


def _run_abuse(abuse: Callable[[int, float], str], port: int, seconds: float,
               results: multiprocessing.Queue) -> None:
    try:
        results.put(abuse(port, seconds))
    except Exception as exc:  # noqa: BLE001 -- reported in the table
        results.put(f"abuse failed: {type(exc).__name__}: {exc}")


def health_ms(base: str) -> float:
    started = time.monotonic()
    try:
        httpx.get(base + "/health", timeout=10).raise_for_status()
    except httpx.HTTPError:
        return float("inf")
    return (time.monotonic() - started) * 1000


def measure(camera: Camera, name: str, clients: int, seconds: float) -> dict:
    pid = camera.process.pid
    fds_before, rss_before, peak_before = open_fds(pid), rss_mb(pid), rss_mb(pid, "VmHWM")
    healthy = subprocess.Popen([sys.executable, str(REPO / "bench" / "stream_clients.py"), camera.ws,
                                str(clients)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    json.loads(healthy.stdout.readline())
    start = time.time() + 0.5
    healthy.stdin.write(f"{start} {start + seconds}\n")
    healthy.stdin.flush()
    time.sleep(max(0.0, start - time.time()))
    skipped = skipped_frames(camera.port)
    results: multiprocessing.Queue = multiprocessing.Queue()
    abuser = multiprocessing.Process(target=_run_abuse, args=(ABUSES[name], camera.port, seconds, results))
    abuser.start()
    slowest = 0.0
    while time.time() < start + seconds:
        slowest = max(slowest, health_ms(camera.http))
        time.sleep(0.2)
    tried = results.get(timeout=seconds + 120)
    abuser.join(30)
    received = json.loads(healthy.communicate()[0].splitlines()[-1])["clients"]
    skipped = skipped_frames(camera.port) - skipped
    settle_started = time.monotonic()
    while open_fds(pid) > fds_before and time.monotonic() - settle_started < 60:
        time.sleep(0.2)
    settled = time.monotonic() - settle_started
    fds_after, rss_after = open_fds(pid), rss_mb(pid)  # before this process's own /health request below
    fps = [len(c["ids"]) / seconds for c in received]
    lost = max((c["ids"][-1] - c["ids"][0] + 1) - len(c["ids"]) if c["ids"] else -1 for c in received)
    latencies = np.concatenate([c["latencies"] for c in received]) * 1000
    return {
        "abuse": name, "tried": tried, "fps_min": round(min(fps), 1), "ids_lost": lost,
        "camera_skipped": int(skipped), "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1), "health_max_ms": round(slowest, 1),
        "health_after_ms": round(health_ms(camera.http), 1),
        "fds": f"{fds_before} -> {fds_after}", "settled_s": round(settled, 1),
        "rss_mb": f"{rss_before:.0f} -> {rss_after:.0f}",
        "peak_growth_mb": round(rss_mb(pid, "VmHWM") - peak_before, 1),
        "alive": camera.process.poll() is None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5, help="healthy clients")
    parser.add_argument("--seconds", type=float, default=8.0, help="each window")
    parser.add_argument("--size", default="320x240", help="synthetic source size")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--request-timeout", type=float, default=2.0,
                        help="the camera's request_timeout (default 10 there; shorter here, so the slowloris "
                             "window shows the camera closing connections)")
    parser.add_argument("--only", help="comma-separated abuses to run after the baseline")
    args = parser.parse_args()
    names = ["baseline"] + [n for n in ABUSES if n != "baseline"
                            and (not args.only or n in args.only.split(","))]
    with tempfile.TemporaryDirectory() as workdir:
        camera = Camera.start(Path(workdir), DRISHTI_VIDEO_PATH=f"synthetic:{args.size}",
                              DRISHTI_FPS=str(args.fps), DRISHTI_LOG_LEVEL="error",
                              DRISHTI_MAX_CLIENTS=str(args.clients + 10),
                              DRISHTI_REQUEST_TIMEOUT=str(args.request_timeout))
        try:
            print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
                  f"{os.getloadavg()[0]:.2f}; camera: synthetic:{args.size} at {args.fps} fps, "
                  f"max_clients {args.clients + 10}, request_timeout {args.request_timeout:g}s, other "
                  f"settings at their defaults; {args.clients} healthy clients; {args.seconds:g}s per window",
                  flush=True)
            rows = []
            for name in names:
                row = measure(camera, name, args.clients, args.seconds)
                rows.append(row)
                print(json.dumps(row), flush=True)
            base = rows[0]["p99_ms"]
            print("\n| " + " | ".join(COLUMNS) + " |")
            print("|" + "---|" * len(COLUMNS))
            for r in rows:
                delta = "" if r is rows[0] else f" ({r['p99_ms'] - base:+.1f})"
                cells = [r["abuse"], r["tried"], r["fps_min"], r["ids_lost"], r["camera_skipped"],
                         r["p50_ms"], f"{r['p99_ms']}{delta}", r["health_max_ms"],
                         f"{r['fds']} ({r['settled_s']}s)", f"{r['rss_mb']} (+{r['peak_growth_mb']})",
                         "yes" if r["alive"] else "NO"]
                print("| " + " | ".join(map(str, cells)) + " |")
        finally:
            camera.stop()


if __name__ == "__main__":
    main()
