"""FastAPI routes and lifespan: the camera's HTTP and WebSocket surface, nothing else."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, Response, WebSocket
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from drishti_stream import __version__, protocol
from drishti_stream.broadcast import Broadcaster, ClientRate
from drishti_stream.camera import Camera
from drishti_stream.figures import JSON, Figures, figures, prefers_json
from drishti_stream.wsstream import serve_websocket

MJPEG_BOUNDARY = "frame"
FRAME_ID_PATH = ("Any frame id from 0 up to the latest due: frame k is due at epoch + k / fps, and carries "
                 "the same JPEG on every replica and after every restart with the same epoch.")
FPS_QUERY = ("A lower rate for this client, 1 up to the camera's: it gets the first frame at or after each "
             "of its own deadlines, the same frame ids as every client asking for that rate.")


def create_app(camera: Camera, broadcaster: Broadcaster) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        producer = asyncio.create_task(camera.run(broadcaster.publish, broadcaster.wants_meta), name="camera")
        yield
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
        camera.close()

    app = FastAPI(
        title="DrishtiStream",
        version=__version__,
        summary="A video replayed as a live camera: one JSON message per frame on WS /ws/stream.",
        lifespan=lifespan,
    )

    @app.get("/", summary="What this camera is and what it is doing")
    def info() -> dict[str, Any]:
        source = camera.source
        latest = camera.latest
        return {
            "name": camera.settings.name,
            "service": protocol.SOURCE,
            "protocol_version": protocol.VERSION,
            "version": __version__,
            "source": source.name,
            "resolution": {"width": camera.size[0], "height": camera.size[1]},
            "source_resolution": {"width": source.width, "height": source.height},
            "source_fps": float(source.native_fps),
            "fps": camera.fps,
            "frame_count": source.length,
            "loop": camera.settings.loop,
            "epoch": camera.clock.epoch,
            "frame_id": latest.frame_id if latest else None,
            "frames_skipped": camera.skipped,
            "frame_store": {"state": camera.supply.state,
                            "path": str(camera.supply.path) if camera.supply.path else None,
                            "bytes": camera.supply.store.size if camera.supply.store else 0},
            "clients": broadcaster.clients,
            "stream": "/ws/stream",
        }

    @app.get("/health", summary="Liveness: the process is serving")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: a frame has been produced", responses={503: {}})
    def ready(response: Response) -> dict[str, Any]:
        if camera.latest is None:
            response.status_code = 503
            return {"status": "starting"}
        return {"status": "ready", "frame_id": camera.latest.frame_id}

    @app.get("/metrics", summary="Prometheus metrics; JSON for clients that ask for application/json",
             response_class=Response,
             responses={200: {"model": Figures, "content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics(accept: Annotated[str | None, Header()] = None) -> Response:
        if prefers_json(accept):
            return Response(figures(camera, broadcaster).model_dump_json(), media_type=JSON)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/snapshot.jpg", summary="The current frame as a JPEG", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}, 503: {}})
    def snapshot() -> Response:
        latest = camera.latest
        if latest is None:
            return Response(status_code=503)
        return Response(latest.jpeg, media_type="image/jpeg", headers={"X-Frame-Id": str(latest.frame_id)})

    @app.get("/frames/{frame_id}.jpg", summary="The exact JPEG a frame id carries (or carried)",
             response_class=Response, responses={
                 200: {"content": {"image/jpeg": {}},
                       "description": "The JPEG of that frame id, byte for byte what its message carried."},
                 404: {"description": "The frame id is not due yet; Retry-After says in how many seconds."}})
    def frame_jpeg(frame_id: Annotated[int, Path(ge=0, description=FRAME_ID_PATH)]) -> Response:
        latest = camera.clock.latest_due(time.time())
        if frame_id > latest:
            wait = camera.clock.due(frame_id) - time.time()
            detail = f"frame {frame_id} is not due yet: it is due in {wait:.3f} s (the latest frame id is "
            detail += f"{latest})"
            raise HTTPException(404, detail, headers={"Retry-After": str(math.ceil(wait))})
        return Response(camera.jpeg(frame_id), media_type="image/jpeg", headers={
            "X-Frame-Id": str(frame_id), "X-Frame-Timestamp": repr(camera.clock.due(frame_id)),
            "X-Source-Index": str(camera.source_index(frame_id))})

    @app.get("/stream.mjpg", summary="The stream as multipart MJPEG (browsers, VLC)", response_class=Response,
             responses={422: {}})
    def mjpeg(request: Request,
              fps: Annotated[str | None, Query(description=FPS_QUERY)] = None) -> StreamingResponse:
        try:
            rate = ClientRate.parse(fps, camera.fps)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        client = request.client
        name = f"{client.host}:{client.port}" if client else "unknown"

        async def parts() -> AsyncIterator[bytes]:
            async for frame in broadcaster.frames(name, "mjpeg", rate):
                yield (
                    f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n"
                    f"X-Frame-Id: {frame.frame_id}\r\n\r\n"
                ).encode() + frame.jpeg + b"\r\n"

        return StreamingResponse(parts(), media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}")

    @app.websocket("/ws/stream")
    async def stream(websocket: WebSocket) -> None:
        """Protocol v1.0: one JSON text message per frame (see frame.schema.json); `?fps=N`: a lower rate."""
        await serve_websocket(websocket, broadcaster, camera.fps)

    return app
