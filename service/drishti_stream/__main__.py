"""`drishti-stream` (or `python -m drishti_stream`): run a camera, or probe one as a consumer would."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import uvicorn

from drishti_stream import __version__

log = logging.getLogger("drishti_stream")

# OpenCV and FFmpeg print their own warnings for a bad video; the camera reports it in one line instead.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

# Where Kubernetes looks for why a container ended (the pod's default terminationMessagePath); the kubelet
# creates it, so it exists only in a pod.
TERMINATION_LOG = Path("/dev/termination-log")


def fail(reason: str) -> int:
    """Ends a camera that cannot start: one line on stderr, and as the container's termination message."""
    line = f"drishti-stream: {reason}"
    print(line, file=sys.stderr)
    if TERMINATION_LOG.exists():
        TERMINATION_LOG.write_text(line + "\n")
    return 2


def serve() -> int:
    """Starts a camera from the settings; any bad setting or video fails here, before the port opens."""
    from drishti_stream import otel
    from drishti_stream.app import create_app
    from drishti_stream.broadcast import Broadcaster
    from drishti_stream.camera import Camera
    from drishti_stream.httpprotocol import CameraHttpProtocol
    from drishti_stream.logs import configure_logging
    from drishti_stream.settings import SettingsError, load_settings
    from drishti_stream.sources import SourceError, open_source
    from drishti_stream.wsprotocol import CameraWebSocketProtocol

    try:
        settings = load_settings()
    except SettingsError as exc:
        return fail(str(exc))
    configure_logging(settings.log_level, settings.log_format)
    otel.configure(settings.name, __version__)
    try:
        source = open_source(settings.video_path, settings.cache_dir, settings.gcs_endpoint)
    except SourceError as exc:
        return fail(str(exc))
    camera = Camera(settings, source)
    message_bytes = camera.check_message_size()
    log.info("camera %s: %s %dx%d at %d fps (native %.3f), %d frames, loop=%s, epoch=%.3f, ~%d bytes/frame",
             settings.name, source.name, *camera.size, camera.fps, float(source.native_fps), source.length,
             settings.loop, camera.clock.epoch, message_bytes)
    app = create_app(camera, Broadcaster(settings.send_timeout, settings.max_clients))
    server = uvicorn.Server(uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=CameraHttpProtocol.with_request_timeout(settings.request_timeout),
        h11_max_incomplete_event_size=settings.max_header_bytes,  # h11's limit: httptools would take any size
        ws=CameraWebSocketProtocol,
        ws_per_message_deflate=False,  # compressing JPEG costs CPU per client per frame and saves nothing
        ws_max_size=64 * 1024,  # clients only ever send small control messages
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=1,
    ))
    server.run()
    otel.shutdown()
    return 0 if server.started else 1


def probe(url: str, seconds: float, as_json: bool) -> int:
    from drishti_stream.probe import run_probe

    report = asyncio.run(run_probe(url, seconds))
    print(report.to_json() if as_json else report.summary())
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drishti-stream", description=__doc__)
    parser.add_argument("--version", action="version", version=f"drishti-stream {__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run a camera (the default); configured by config.yaml and DRISHTI_*")
    check = commands.add_parser("probe",
                                help="connect as a consumer and check the stream against protocol v1.0")
    check.add_argument("url", help="e.g. ws://localhost:8000/ws/stream")
    check.add_argument("--seconds", type=float, default=5.0, help="how long to listen (default 5)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.command == "probe":
        return probe(args.url, args.seconds, args.json)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
