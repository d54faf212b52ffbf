"""Slow, stalled and departing clients: none of them may affect another client."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import struct
import time

from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.uri import parse_uri

from hack.cluster.testing import wait_until
from tests.service.abuse import close_frame
from tests.service.camera import Camera, assert_every_frame_sent, assert_on_time, collect, metric_samples


class RawClient:
    """A real WebSocket client (websockets' sans-I/O protocol) on a socket with a tiny receive buffer,
    so its reading pace, not kernel buffering, decides what reaches it."""

    def __init__(self, camera: Camera) -> None:
        self.protocol = ClientProtocol(parse_uri(camera.ws))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", camera.port))
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(self.sock.recv(4096))
        assert self.protocol.handshake_exc is None
        self.pending: list[str] = []

    def next_message(self) -> str:
        while not self.pending:
            self.protocol.receive_data(self.sock.recv(1 << 16))
            events = self.protocol.events_received()
            self.pending += [e.data.decode() for e in events if e.opcode is Opcode.TEXT]
        return self.pending.pop(0)

    def read_until_close(self, timeout: float = 5) -> Close | None:
        """Resumes reading: everything queued, then the server's close frame (None if the socket ended)."""
        return close_frame(self.protocol, self.sock, timeout)

    def close(self) -> None:
        self.sock.close()

    def vanish(self) -> None:
        """Leaves without a close frame or a FIN: the kernel resets the connection (as a crashed client's)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def disconnects(camera: Camera, reason: str) -> float:
    return camera.sample("drishti_client_disconnects_total", reason=reason)


def test_a_stalled_client_delays_no_one_and_is_closed_with_1013(start_camera):
    timeout = 2.0
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_SEND_TIMEOUT=str(timeout))
    skipped_before = camera.skipped()
    stalled = RawClient(camera)  # and then never reads
    stalled_at = time.monotonic()

    async def watch():
        healthy = asyncio.create_task(collect(camera.ws, seconds=timeout + 1.5))
        closed_after = None
        while closed_after is None and time.monotonic() - stalled_at < timeout + 3:
            if await asyncio.to_thread(disconnects, camera, "send_timeout") >= 1:
                closed_after = time.monotonic() - stalled_at
                close = await asyncio.to_thread(stalled.read_until_close)
                break
            await asyncio.sleep(0.05)
        return await healthy, closed_after, close

    received, closed_after, close = asyncio.run(watch())
    stalled.close()
    assert closed_after is not None and closed_after <= timeout + 1.0
    assert close is not None and close.code == 1013 and "accepted nothing" in close.reason
    ids = [r.message["frame_id"] for r in received]
    assert len(ids) >= 30 * (timeout + 1), "the healthy client streamed through the stall and the close"
    assert_every_frame_sent(received, camera.skipped() - skipped_before)
    assert_on_time(received, 30)


def test_a_slow_client_loses_old_frames_but_always_gets_the_newest(start_camera):
    camera = start_camera(DRISHTI_FPS="30")
    slow = RawClient(camera)  # a 4 KiB receive buffer: what it is sent is what the server chose to send
    received, lags = [], []
    for _ in range(16):
        received.append(json.loads(slow.next_message()))
        lags.append(time.time() - received[-1]["timestamp"])
        time.sleep(0.2)  # reads at 5 fps from a 30 fps camera
    metrics = camera.metrics()
    slow.close()
    ids = [m["frame_id"] for m in received]
    assert ids == sorted(set(ids))
    gaps = sorted(b - a for a, b in itertools.pairwise(ids[4:]))
    assert gaps[len(gaps) // 2] >= 4, f"older frames were dropped, not queued: {ids}"
    # what waits for it is a few frames in socket buffers (read at 5 fps: under a second), not a backlog
    # that grows with time: without dropping, the last reads would be 2 s behind and falling further
    late = sorted(lags[8:])
    assert late[len(late) // 2] < 1.0, f"lag of the newest frames it got: {lags}"
    dropped = [sample.value for sample in metric_samples(metrics, "drishti_client_frames_dropped_total")]
    assert len(dropped) == 1 and dropped[0] >= 30, "the drops are counted for that client"


def test_sigterm_closes_every_client_with_1001_and_exits_within_2s(start_camera):
    camera = start_camera()
    stalled = RawClient(camera)

    async def terminate_while_streaming():
        import websockets

        async with websockets.connect(camera.ws) as ws:
            await ws.recv()
            started = time.monotonic()
            os.kill(camera.process.pid, signal.SIGTERM)
            try:
                while True:
                    await ws.recv()
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            exit_code = await asyncio.to_thread(camera.process.wait, 5)
            return code, exit_code, time.monotonic() - started

    code, exit_code, elapsed = asyncio.run(terminate_while_streaming())
    stalled.close()
    assert code == 1001
    assert exit_code == -signal.SIGTERM  # uvicorn re-raises the signal after a clean shutdown (supervisors)
    assert elapsed <= 2.0, f"exited after {elapsed:.2f}s"


def test_a_client_that_closes_mid_stream_is_counted_as_client_closed(start_camera):
    # its close frame reaches the reader, which ends the stream
    camera = start_camera(DRISHTI_FPS="30")

    async def leave_after_five_frames():
        import websockets

        async with websockets.connect(camera.ws) as ws:
            for _ in range(5):
                await ws.recv()

    asyncio.run(leave_after_five_frames())
    wait_until(lambda: disconnects(camera, "client_closed") == 1, 5, 0.05, what=camera.output)
    assert camera.sample("drishti_clients_connected") == 0
    assert "Exception in ASGI application" not in camera.output()


def test_a_client_that_vanishes_while_its_writer_waits_for_room_is_counted_as_client_closed(start_camera):
    # The writer is inside send (the socket is full) when the connection is reset: the send raises, and the
    # writer, not only the reader, must take that for a departure rather than a bug.
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_SEND_TIMEOUT="60")
    stalled = RawClient(camera)  # and then never reads
    wait_until(lambda: camera.sample("drishti_client_frames_dropped_total") >= 5, 10, 0.05,
               what="the stalled client's socket to fill and its writer to block (frames dropped)")
    stalled.vanish()
    wait_until(lambda: disconnects(camera, "client_closed") == 1, 5, 0.05, what=camera.output)
    assert camera.sample("drishti_clients_connected") == 0
    assert "Exception in ASGI application" not in camera.output()


def test_a_client_that_reads_but_never_answers_pings_is_closed_with_1011_as_ping_timeout(start_camera):
    # A half-open connection as the camera sees it: frames go out, but no pong comes back. The camera's
    # keepalive closes it with 1011 and counts it as ping_timeout, not as a client that left; a client that
    # answers its pings stays.
    camera = start_camera(DRISHTI_FPS="30", DRISHTI_PING_INTERVAL="0.5", DRISHTI_PING_TIMEOUT="0.5")

    async def answers_pings(seconds: float) -> int:
        import websockets

        async with websockets.connect(camera.ws, ping_interval=None) as ws:  # pongs are sent automatically
            deadline, received = time.monotonic() + seconds, 0
            while time.monotonic() < deadline:
                await ws.recv()
                received += 1
            return received

    silent = RawClient(camera)  # reads everything, sends nothing: not even a pong
    started = time.monotonic()
    close = silent.read_until_close(timeout=5)
    elapsed = time.monotonic() - started
    silent.close()
    assert close is not None and close.code == 1011 and close.reason == "keepalive ping timeout", close
    assert 0.9 <= elapsed <= 3, f"closed after {elapsed:.2f}s (ping every 0.5 s, 0.5 s to answer)"
    wait_until(lambda: disconnects(camera, "ping_timeout") == 1, 5, 0.05, what=camera.output)
    assert asyncio.run(answers_pings(3.0)) >= 80  # 3 s at 30 fps, six pings answered, never closed
    wait_until(lambda: disconnects(camera, "client_closed") == 1, 5, 0.05, what=camera.output)
    assert disconnects(camera, "ping_timeout") == 1
    assert "Exception in ASGI application" not in camera.output()
