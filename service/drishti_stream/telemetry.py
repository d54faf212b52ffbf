"""Prometheus metrics and the camera's OpenTelemetry tracer.

Tracing is off unless an `OTEL_*` variable asks for it (see `otel`); without a provider the API's no-op tracer
costs next to nothing, so the hot path can always create spans.
"""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

FRAMES_PRODUCED = Counter("drishti_frames_produced_total", "Frames produced and published to clients.")
FRAMES_SKIPPED = Counter("drishti_frames_skipped_total",
                         "Frame ids skipped because production fell behind the wall clock.")
FRAMES_ENCODED = Counter("drishti_frames_encoded_total",
                         "Source frames JPEG-encoded by this camera (none once its frame store is complete).")
FRAME_STORE_BYTES = Gauge("drishti_frame_store_bytes", "Bytes of encoded frames in the camera's frame store.")
CLIENTS = Gauge("drishti_clients_connected", "Clients currently connected.", ["kind"])
FRAMES_DROPPED = Counter("drishti_client_frames_dropped_total",
                         "Frames a slow client missed because a newer one replaced it.", ["client"])
DISCONNECTS = Counter("drishti_client_disconnects_total", "Client disconnections by reason.", ["reason"])
ENCODE_SECONDS = Histogram("drishti_encode_seconds", "Time to read, encode and serialize one frame.",
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25))
SEND_LAG_SECONDS = Histogram("drishti_send_lag_seconds",
                             "Time from a frame's due time to its hand-over to clients' sockets: once per "
                             "frame for the clients written during the fan-out (when the last of them was), "
                             "once per frame and client for a client written by its own writer.",
                             buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0))

tracer = trace.get_tracer("drishti_stream")
