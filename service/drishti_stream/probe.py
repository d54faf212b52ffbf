"""A consumer that checks a camera: every message against the v1.0 schema (with extended metadata when the URL
asks for it), every image as a JPEG, ids, timing."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np
import websockets
from jsonschema import Draft202012Validator

from drishti_stream.protocol import message_schema

MAX_VIOLATIONS_KEPT = 20


@dataclass
class ProbeReport:
    url: str
    seconds: float
    frames: int = 0
    fps_declared: int | None = None
    fps_delivered: float = 0.0
    first_frame_id: int | None = None
    last_frame_id: int | None = None
    frame_id_gaps: int = 0
    frames_missed: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)
    resolution: tuple[int, int] | None = None
    violations: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.frames > 0 and not self.violations and self.error is None

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok})

    def summary(self) -> str:
        lines = [f"{'OK' if self.ok else 'FAIL'} {self.url}: {self.frames} frames in {self.seconds:.1f}s"]
        if self.frames:
            lat = self.latency_ms
            lines += [
                f"  fps: delivered {self.fps_delivered:.2f}, declared {self.fps_declared}",
                (f"  frame_id: {self.first_frame_id}..{self.last_frame_id}, {self.frame_id_gaps} gaps "
                 f"({self.frames_missed} ids missed)"),
                (f"  latency ms (receive - timestamp): p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  "
                 f"p99 {lat['p99']:.1f}  max {lat['max']:.1f}"),
                f"  resolution: {self.resolution[0]}x{self.resolution[1]}" if self.resolution else "",
            ]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  violation: {v}" for v in self.violations]
        return "\n".join(line for line in lines if line)


class MessageChecker:
    """Checks one message after another against the contract; keeps what it learned for the report."""

    def __init__(self, report: ProbeReport) -> None:
        self.report = report
        # a client that asked for extended metadata (`?meta=1`) must get it in every message
        asked_meta = parse_qs(urlsplit(report.url).query).get("meta") == ["1"]
        self.validator = Draft202012Validator(message_schema(meta=asked_meta))
        self.latencies: list[float] = []

    def violation(self, text: str) -> None:
        if len(self.report.violations) < MAX_VIOLATIONS_KEPT:
            self.report.violations.append(text)

    def check(self, raw: str | bytes, received_at: float) -> None:
        report = self.report
        if isinstance(raw, bytes):
            return self.violation("binary message; protocol v1.0 sends text")
        try:
            message = json.loads(raw)
        except json.JSONDecodeError as exc:
            return self.violation(f"message is not JSON: {exc}")
        errors = sorted(self.validator.iter_errors(message), key=str)
        if errors:
            return self.violation(f"schema: {errors[0].message}")
        frame_id, fps = message["frame_id"], message["fps"]
        if report.last_frame_id is not None and frame_id <= report.last_frame_id:
            self.violation(f"frame_id {frame_id} after {report.last_frame_id}: not strictly increasing")
        elif report.last_frame_id is not None and frame_id > report.last_frame_id + 1:
            report.frame_id_gaps += 1
            report.frames_missed += frame_id - report.last_frame_id - 1
        if report.fps_declared not in (None, fps):
            self.violation(f"fps changed from {report.fps_declared} to {fps}")
        report.fps_declared = fps
        report.first_frame_id = frame_id if report.first_frame_id is None else report.first_frame_id
        report.last_frame_id = frame_id
        report.frames += 1
        self.latencies.append((received_at - message["timestamp"]) * 1000)
        self.check_image(message["image"], frame_id)

    def check_image(self, encoded: str, frame_id: int) -> None:
        try:
            jpeg = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            return self.violation(f"frame {frame_id}: image is not standard padded base64")
        if not (jpeg.startswith(b"\xff\xd8") and jpeg.rstrip(b"\x00").endswith(b"\xff\xd9")):
            return self.violation(f"frame {frame_id}: image is not a JPEG (SOI/EOI markers missing)")
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            return self.violation(f"frame {frame_id}: JPEG does not decode")
        self.report.resolution = (image.shape[1], image.shape[0])

    def finish(self, elapsed: float) -> None:
        self.report.fps_delivered = self.report.frames / elapsed if elapsed > 0 else 0.0
        if self.latencies:
            p = np.percentile(self.latencies, [50, 90, 99])
            self.report.latency_ms = {"p50": p[0], "p90": p[1], "p99": p[2], "max": max(self.latencies)}
            self.report.latency_ms = {k: round(float(v), 2) for k, v in self.report.latency_ms.items()}


async def run_probe(url: str, seconds: float) -> ProbeReport:
    """Listens for `seconds` with a stock `websockets` client (its defaults, as consumers use them)."""
    report = ProbeReport(url=url, seconds=seconds)
    checker = MessageChecker(report)
    started = time.monotonic()
    try:
        async with websockets.connect(url, open_timeout=10) as ws:
            started = time.monotonic()
            deadline = started + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    raw = await asyncio.wait_for(ws.recv(), remaining)
                except TimeoutError:
                    break
                checker.check(raw, time.time())
    except (OSError, websockets.WebSocketException) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    checker.finish(time.monotonic() - started)
    return report
