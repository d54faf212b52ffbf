"""Reconcile and API spans, seen through the OpenTelemetry SDK's in-memory exporter; OTEL_* env parsing."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from drishti_operator import tracing
from opentelemetry.trace import SpanKind, StatusCode

from tests.operator.spans import memory_exporter


def test_nothing_set_means_no_tracing() -> None:
    assert tracing.wanted({}) == []
    assert tracing.configure({}) is False


@pytest.mark.parametrize("env,expected", [
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
    ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
    ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
])
def test_exporters_follow_the_standard_variables(env: dict, expected: list) -> None:
    assert tracing.wanted(env) == expected


def test_reconcile_span_with_nested_api_span() -> None:
    exporter = memory_exporter()
    with tracing.reconcile_span("create", "ns-span", "cam-span", 3) as handle:
        with tracing.api_span("apply", "Deployment", "ns-span", "cam-span"):
            time.sleep(0.05)
        handle.outcome = "created"
    spans = {s.name: s for s in exporter.get_finished_spans()
             if s.attributes.get("k8s.namespace.name") == "ns-span"}
    outer, inner = spans["reconcile create"], spans["apply Deployment"]
    assert outer.attributes["drishti.camera"] == "cam-span"
    assert outer.attributes["drishti.generation"] == 3
    assert outer.attributes["drishti.action"] == "create"
    assert outer.attributes["drishti.outcome"] == "created"
    # the reconcile's own measure of its time: at least what it waited for, and what the span itself lasted
    span_s = (outer.end_time - outer.start_time) / 1e9
    assert 0.05 <= outer.attributes["drishti.duration_s"] <= span_s + 0.001
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.kind == SpanKind.CLIENT and inner.attributes["k8s.resource.kind"] == "Deployment"


def test_failures_are_recorded() -> None:
    exporter = memory_exporter()

    class Boom(Exception):
        status = 422

    with (pytest.raises(Boom), tracing.reconcile_span("update", "ns-fail", "cam", 1),
          tracing.api_span("apply", "Service", "ns-fail", "cam")):
        raise Boom("no")
    spans = {s.name: s for s in exporter.get_finished_spans()
             if s.attributes.get("k8s.namespace.name") == "ns-fail"}
    assert spans["apply Service"].attributes["http.response.status_code"] == 422
    assert spans["apply Service"].status.status_code == StatusCode.ERROR
    assert spans["reconcile update"].attributes["drishti.outcome"] == "error"
    assert spans["reconcile update"].attributes["drishti.error"] == "Boom"


def test_console_exporter_from_env_in_a_fresh_process() -> None:
    """With OTEL_TRACES_EXPORTER=console the spans are exported (here: printed) by the SDK."""
    code = (
        "from drishti_operator import tracing\n"
        "assert tracing.configure()\n"
        "with tracing.reconcile_span('create', 'ns', 'cam', 1):\n"
        "    pass\n"
        "tracing.shutdown()\n"
    )
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "op-test",
           "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert '"name": "reconcile create"' in out and "op-test" in out
