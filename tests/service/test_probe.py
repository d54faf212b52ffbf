"""`drishti-stream probe`: passes a real camera, fails a stream that breaks the contract."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import websockets
from drishti_stream.probe import MessageChecker, ProbeReport

from tests.service.camera import camera_env


def run_probe(url: str, seconds: float = 2) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "drishti_stream", "probe", url, "--seconds", str(seconds), "--json"]
    return subprocess.run(command, env=camera_env(), capture_output=True, text=True, timeout=60, check=False)


def test_probe_passes_a_real_camera(start_camera):
    camera = start_camera(DRISHTI_FPS="25")
    result = run_probe(camera.ws, seconds=2)
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert report["ok"] and report["violations"] == []
    assert report["fps_declared"] == 25 and 22 <= report["fps_delivered"] <= 26
    assert report["frame_id_gaps"] == 0 and report["resolution"] == [1280, 720]
    assert 0 <= report["latency_ms"]["p50"] <= 40


def jpeg_base64() -> str:
    """A real 16x16 JPEG, standard padded base64: every bad message below is valid but for its one flaw."""
    import cv2
    import numpy as np

    return base64.b64encode(cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()).decode()


GOOD = {"source": "DrishtiStream", "version": "v1.0", "frame_id": 1, "timestamp": 1.5, "fps": 30,
        "image": jpeg_base64()}
# Each breaks exactly one rule of the contract, and the probe must name that rule.
BAD_MESSAGES = {
    "extra-field": ({**GOOD, "boxes": []},
                    "schema: Additional properties are not allowed ('boxes' was unexpected)"),
    "fps-out-of-range": ({**GOOD, "fps": 500}, "schema: 500 is greater than the maximum of 120"),
    "not-a-jpeg": ({**GOOD, "image": "aGVsbG8="}, "frame 1: image is not a JPEG (SOI/EOI markers missing)"),
}


@pytest.fixture
def bad_camera(request) -> Iterator[str]:
    """A WebSocket server on loopback that sends one contract-breaking message per connection."""
    message = json.dumps(BAD_MESSAGES[request.param][0])
    ready = threading.Event()
    state: dict = {}

    async def handler(ws):
        await ws.send(message)
        await ws.wait_closed()

    async def main():
        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            state["url"] = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws/stream"
            state["stop"] = asyncio.get_running_loop().create_future()
            ready.set()
            await state["stop"]

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    yield state["url"]
    loop.call_soon_threadsafe(state["stop"].set_result, None)
    thread.join(10)


@pytest.mark.parametrize("bad_camera", list(BAD_MESSAGES), indirect=True)
def test_probe_fails_a_contract_violation(bad_camera, request):
    result = run_probe(bad_camera, seconds=1)
    report = json.loads(result.stdout)
    assert result.returncode == 1
    _, named = BAD_MESSAGES[request.node.callspec.params["bad_camera"]]
    assert not report["ok"] and report["violations"] == [named]


def test_the_good_message_passes_the_probe_s_checks():
    """The bad messages' common base is itself valid, so each bad one fails for its own flaw only."""
    checker = MessageChecker(ProbeReport(url="ws://x/ws/stream", seconds=1))
    checker.check(json.dumps(GOOD), received_at=2.0)
    assert checker.report.violations == [] and checker.report.resolution == (16, 16)


def test_probe_fails_when_nothing_listens():
    result = run_probe("ws://127.0.0.1:9/ws/stream", seconds=1)
    assert result.returncode == 1
    assert "ConnectionRefusedError" in json.loads(result.stdout)["error"]
