"""Traces you can look at: Jaeger v2 (built from the Go module proxy by hack/delivery/tools.sh) runs in the
cluster; the operator exports its reconcile spans there through the chart's `operator.extraEnv`, a camera its
frame spans through `spec.tracing.otlpEndpoint`; both are found in Jaeger's query API by their attributes."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hack.cluster.testing import wait_until
from hack.kind import cluster
from tests.chart.tools import CHART
from tests.kind.cameras import apply_camera, wait_ready

pytestmark = pytest.mark.timeout(900)

JAEGER_IMAGE = "drishti/jaeger:test"
NAMESPACE = "drishti-traced"


def jaeger_objects(image: str) -> list[dict]:
    labels = {"app.kubernetes.io/name": "jaeger"}
    container = {"name": "jaeger", "image": image, "imagePullPolicy": "IfNotPresent",
                 # else it listens on loopback only
                 "env": [{"name": "JAEGER_LISTEN_HOST", "value": "0.0.0.0"}],
                 "ports": [{"containerPort": 4318, "name": "otlp-http"},
                           {"containerPort": 16686, "name": "query"}],
                 "readinessProbe": {"tcpSocket": {"port": 4318}, "periodSeconds": 1}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "jaeger"},
         "spec": {"selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "jaeger"},
         "spec": {"selector": labels, "ports": [{"name": "otlp-http", "port": 4318},
                                                {"name": "query", "port": 16686}]}},
    ]


@pytest.fixture(scope="module")
def jaeger(kind_cluster, kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Jaeger v2 in the namespace of this module's operator; yields its OTLP/HTTP endpoint."""
    built = subprocess.run([str(cluster.images.TOOLS_SH), "jaeger"], stdout=subprocess.PIPE, text=True,
                           check=True, timeout=3600)
    context = tmp_path_factory.mktemp("jaeger")
    shutil.copy2(built.stdout.split()[-1], context / "jaeger")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY jaeger /jaeger\nENTRYPOINT ["/jaeger"]\n')
    subprocess.run(["docker", "build", "-q", "--network", "none", "--force-rm", "-t", JAEGER_IMAGE,
                    str(context)], check=True, stdout=subprocess.DEVNULL, timeout=300)
    try:
        subprocess.run([cluster.kind_bin(), "load", "docker-image", JAEGER_IMAGE,
                        "--name", kind_cluster.name], check=True, capture_output=True, timeout=300)
        kubectl("create", "namespace", NAMESPACE)
        kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(jaeger_objects(JAEGER_IMAGE)))
        kubectl("-n", NAMESPACE, "rollout", "status", "deployment/jaeger", "--timeout=120s", timeout=150)
        yield f"http://jaeger.{NAMESPACE}.svc:4318"
    finally:
        kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        subprocess.run(["docker", "image", "rm", JAEGER_IMAGE], check=False, capture_output=True)


@pytest.fixture(scope="module")
def traced_operator(jaeger, kind_env, kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The chart, its operator exporting to Jaeger through `operator.extraEnv`."""
    values = tmp_path_factory.mktemp("values") / "values.yaml"
    values.write_text(yaml.safe_dump({"operator": {"image": {"tag": "dev"}, "extraEnv": [
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": jaeger}]}, "camera": {"image": {"tag": "dev"}}}))
    subprocess.run(["helm", "install", "traced", str(CHART), "-n", NAMESPACE, "-f", str(values), "--wait",
                    "--timeout=3m"], env=kind_env, check=True, capture_output=True, timeout=240)
    try:
        yield
    finally:
        subprocess.run(["helm", "uninstall", "traced", "-n", NAMESPACE, "--wait"], env=kind_env, check=False,
                       capture_output=True, timeout=180)


def traces(kubectl, service: str) -> list[dict]:
    """Jaeger's query API, through the API server's service proxy."""
    raw = kubectl("get", "--raw", f"/api/v1/namespaces/{NAMESPACE}/services/jaeger:16686/proxy/api/traces"
                  f"?service={service}&limit=50", check=False)
    return json.loads(raw.stdout).get("data") or [] if raw.returncode == 0 else []


def spans(kubectl, service: str) -> list[dict]:
    return [{**span, "tags": {t["key"]: t["value"] for t in span.get("tags", [])}}
            for trace in traces(kubectl, service) for span in trace["spans"]]


def test_reconcile_and_frame_spans_arrive_in_jaeger(traced_operator, jaeger, kubectl, tmp_path: Path) -> None:
    apply_camera(kubectl, NAMESPACE, "traced-cam", tracing={"otlpEndpoint": jaeger})
    wait_ready(kubectl, NAMESPACE, "traced-cam")

    reconciles = wait_until(lambda: [s for s in spans(kubectl, "drishti-operator")
                                     if s["operationName"].startswith("reconcile")
                                     and s["tags"].get("drishti.camera") == "traced-cam"],
                            timeout=120, interval=3, what="the operator's reconcile spans in Jaeger")
    assert reconciles[0]["tags"]["k8s.namespace.name"] == NAMESPACE, reconciles[0]

    def ten_frame_spans() -> list[dict] | None:
        found = [s for s in spans(kubectl, "traced-cam") if s["operationName"] == "frame.produce"]
        return found if len(found) >= 10 else None

    # the first pass over the video is one trace of its own; the frames' traces follow it
    frames = wait_until(ten_frame_spans, timeout=120, interval=3,
                        what="ten of the camera's frame spans in Jaeger")
    ids = sorted(s["tags"]["drishti.frame_id"] for s in frames)
    assert len(ids) >= 10 and all(isinstance(i, int) and i >= 0 for i in ids), ids[:10]
    print(f"\n[traces] {len(reconciles)} reconcile spans of traced-cam and {len(frames)} frame spans "
          f"(frame ids {ids[0]}..{ids[-1]}) in Jaeger")
