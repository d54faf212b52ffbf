"""OpenTelemetry tracing set up from the standard `OTEL_*` environment, for the camera and the operator.

With none of the variables set no provider is installed: spans are the API's no-op spans and cost next to
nothing. A process that installs its own provider first (a test with an in-memory exporter) gets the spans.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace


def wanted(env: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters the environment asks for ([] = tracing off), per the OTel SDK's conventions."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = env.get("OTEL_TRACES_EXPORTER", "").strip()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not named:
        return ["otlp"] if endpoint else []
    return [name.strip() for name in named.split(",") if name.strip() and name.strip() != "none"]


def configure(service_name: str, version: str, env: Mapping[str, str] = os.environ) -> bool:
    """Installs a tracer provider exporting as `env` says; returns whether tracing is on.

    `service_name` applies unless OTEL_SERVICE_NAME sets one.
    """
    exporters = wanted(env)
    if not exporters:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    attributes: dict[str, Any] = {SERVICE_VERSION: version}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in exporters:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        else:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (use otlp, console or none)")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def shutdown() -> None:
    """Flushes spans still buffered (a no-op without a provider of the SDK)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()
