"""Test support for the abuse tests: healthy clients that watch for lost frames while someone misbehaves, a
raw WebSocket whose frames the test writes byte by byte, and what /proc says about the camera's sockets and
memory."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Close, Opcode
from websockets.uri import parse_uri

from hack.cluster.testing import wait_until
from tests.service.camera import Camera

HEALTHY_CLIENTS = 5


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory in MB: VmRSS now, or VmHWM for the peak so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def health_answers_within(camera: Camera, seconds: float = 1.0) -> None:
    """/health and /ready answer, each within a generous bound (a loaded 2-core machine is slow, not
    stuck)."""
    for path in ("/health", "/ready"):
        started = time.monotonic()
        response = httpx.get(camera.http + path, timeout=10)
        took = time.monotonic() - started
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        assert took < seconds, f"{path} took {took:.2f}s"


def fds_back_to(camera: Camera, baseline: int, timeout: float = 15) -> None:
    """The camera's open file descriptors return to `baseline` (every abusive socket closed, none leaked)."""
    wait_until(lambda: open_fds(camera.process.pid) <= baseline, timeout, 0.2,
               what=lambda: f"camera fds back to {baseline} (now {open_fds(camera.process.pid)}): "
                            f"{sorted(os.listdir(f'/proc/{camera.process.pid}/fd'))}")


class HealthyClients:
    """Stock `websockets` clients, in a thread of their own, recording every frame id they receive: proof that
    what the test does to the camera meanwhile costs them nothing."""

    def __init__(self, camera: Camera, count: int = HEALTHY_CLIENTS) -> None:
        self.camera = camera
        self.ids: list[list[int]] = [[] for _ in range(count)]
        self.errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),),
                                        daemon=True)

    async def _client(self, ids: list[int]) -> None:
        try:
            async with websockets.connect(self.camera.ws, open_timeout=10) as ws:
                while not self._stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    ids.append(json.loads(raw)["frame_id"])
        except BaseException as exc:  # noqa: BLE001 -- reported by stop()
            self.errors.append(exc)

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(ids) for ids in self.ids))

    def __enter__(self) -> HealthyClients:
        self.skipped_before = self.camera.skipped()
        self._thread.start()
        wait_until(lambda: all(len(ids) >= 3 for ids in self.ids) or self.errors, 15, 0.05,
                   what="healthy clients receiving frames")
        assert not self.errors, self.errors
        self.fds = open_fds(self.camera.process.pid)  # the camera's, these clients connected
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    def assert_camera_unharmed(self) -> None:
        """After an abuse: /health and /ready answer promptly, the camera's fds are back to what they were
        with only these clients, and these clients lost nothing."""
        health_answers_within(self.camera)
        fds_back_to(self.camera, self.fds)
        self.assert_nothing_lost()

    def assert_nothing_lost(self) -> None:
        """Each client got every frame id in order, missing only those the camera itself skipped (a starved
        CPU makes it skip ids to stay on the wall clock; that is counted, and not a frame lost on the way)."""
        self.__exit__()
        assert not self.errors, f"a healthy client failed: {self.errors!r}"
        skipped = self.camera.skipped() - self.skipped_before
        for ids in self.ids:
            assert ids == sorted(set(ids)), "frame ids strictly increase"
            lost = (ids[-1] - ids[0] + 1) - len(ids)
            assert lost <= skipped, f"{lost} ids lost, the camera skipped {skipped:g}: {ids}"
        assert self.camera.process.poll() is None, "the camera is alive"


class RawWebSocket:
    """A WebSocket client whose handshake is websockets' but whose frames are bytes the test writes itself, so
    it can break RFC 6455 as no library would; the server's frames are parsed by websockets."""

    def __init__(self, camera: Camera, query: str = "") -> None:
        self.protocol = ClientProtocol(parse_uri(camera.ws + query), max_size=None)
        self.sock = socket.create_connection(("127.0.0.1", camera.port), timeout=10)
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(self.sock.recv(65536))
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    def close_frame(self, timeout: float = 10) -> Close | None:
        """Reads until the server's close frame (None if the connection ends without one)."""
        return close_frame(self.protocol, self.sock, timeout)

    def close(self) -> None:
        self.sock.close()


def frame(opcode: int, payload: bytes = b"", fin: bool = True, masked: bool = True, rsv: int = 0,
          length: int | None = None) -> bytes:
    """One client frame, as RFC 6455 section 5.2 lays it out, right or wrong as asked: any opcode, any
    reserved bits, a declared `length` other than the payload's, no mask."""
    length = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def upgrade_request(path: str = "/ws/stream", **headers: str | None) -> bytes:
    """A WebSocket upgrade request; a header given as None is left out, any other replaces the default."""
    fields: dict[str, str | None] = {
        "Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Version": "13",
    }
    fields.update({name.replace("_", "-"): value for name, value in headers.items()})
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response_head(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and what came after them, of the server's HTTP response on `sock`."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # a server that refuses a request it has not read all of resets
            chunk = b""
        if not chunk:
            raise AssertionError(f"connection closed before a response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(":", 1) for line in lines)
    return int(status_line.split()[1]), {k.strip().lower(): v.strip() for k, v in fields.items()}, rest


def until_closed(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (raises if it does not within `timeout`)."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise TimeoutError(f"connection still open after {timeout}s: {received[:200]!r}")


def status_for(port: int, request: bytes, until_close: bool = True) -> int:
    """Sends a raw request and returns the status of the camera's answer; with `until_close`, also waits for
    the camera to close the connection (it must, within `until_closed`'s timeout)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            sock.sendall(request)
        except OSError:  # refused before all of it was read: the answer is on its way
            pass
        status, _, _ = response_head(sock)
        if until_close:
            until_closed(sock)
    return status


def close_frame(protocol: ClientProtocol, sock: socket.socket, timeout: float) -> Close | None:
    """Reads until the server's close frame (None if the connection ends without one)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            return None
        if not data:
            return None
        protocol.receive_data(data)
        for event in protocol.events_received():
            if getattr(event, "opcode", None) is Opcode.CLOSE:
                return Close.parse(event.data)
    raise TimeoutError("no close frame")
