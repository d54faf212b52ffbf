"""OpenTelemetry spans around every reconcile and every API call it makes.

Exporting is configured only by the standard environment (`OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_SDK_DISABLED`,
...). With none of them set no provider is installed: the spans are OpenTelemetry's no-op spans and cost
next to nothing. A process that installs its own provider first (a test with an in-memory exporter) receives
the spans too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from drishti_stream import otel
from drishti_stream.otel import shutdown, wanted
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from drishti_operator import __version__

__all__ = ["Reconcile", "api_span", "configure", "reconcile_span", "shutdown", "wanted"]

SCOPE = "drishti_operator"
_tracer = trace.get_tracer(SCOPE, __version__)


def configure(env: Mapping[str, str] = os.environ) -> bool:
    """Installs a tracer provider exporting as `env` says; returns whether tracing is on."""
    return otel.configure("drishti-operator", __version__, env)


class Reconcile:
    """The handle a reconcile gets: its span, and the outcome to record (`success` unless told otherwise)."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.outcome: str | None = None


@contextmanager
def reconcile_span(action: str, namespace: str, name: str, generation: int | None) -> Iterator[Reconcile]:
    """A span around one reconcile: camera, namespace, generation, action, outcome and duration."""
    started = time.monotonic()
    attributes: dict[str, Any] = {
        "drishti.camera": name,
        "k8s.namespace.name": namespace,
        "drishti.action": action,
    }
    if generation is not None:
        attributes["drishti.generation"] = generation
    with _tracer.start_as_current_span(f"reconcile {action}", kind=SpanKind.INTERNAL, attributes=attributes,
                                       record_exception=True, set_status_on_exception=True) as span:
        handle = Reconcile(span)
        try:
            yield handle
        except BaseException as exc:
            span.set_attribute("drishti.outcome", handle.outcome or "error")
            span.set_attribute("drishti.error", type(exc).__name__)
            raise
        else:
            span.set_attribute("drishti.outcome", handle.outcome or "success")
        finally:
            span.set_attribute("drishti.duration_s", round(time.monotonic() - started, 6))


@contextmanager
def api_span(verb: str, kind: str, namespace: str, name: str) -> Iterator[Span]:
    """A client span around one Kubernetes API call; an ApiException's status code is recorded."""
    attributes = {
        "k8s.api.verb": verb,
        "k8s.resource.kind": kind,
        "k8s.namespace.name": namespace,
        "k8s.resource.name": name,
    }
    with _tracer.start_as_current_span(f"{verb} {kind}", kind=SpanKind.CLIENT, attributes=attributes,
                                       record_exception=True, set_status_on_exception=False) as span:
        try:
            yield span
        except Exception as exc:
            code = getattr(exc, "status", None)
            if code:
                span.set_attribute("http.response.status_code", int(code))
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {code or exc}"))
            raise
