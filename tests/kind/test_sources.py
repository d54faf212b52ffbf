"""Cameras that play real videos on real nodes, probed from a pod by the camera's Service name: a file on a
PersistentVolumeClaim (manifests/examples/file-on-pvc.yaml, with a static PersistentVolume), and gs:// from a
GCS emulator running as a pod (manifests/examples/gcs.yaml, with the Secret it names and the emulator's
endpoint)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.cloud import storage

from hack.cluster.testing import wait_until
from hack.kind import cluster
from tests.chart.tools import MANIFESTS
from tests.kind.cameras import condition, node_volume, probe_from_a_pod
from tests.ports import free_port
from tests.service.camera import write_video

pytestmark = pytest.mark.timeout(600)

VIDEO_SIZE = (320, 240)  # not the synthetic scene's 1280x720: the probe's resolution tells the sources apart
EMULATOR_IMAGE = "drishti/gcs-emulator:test"
EMULATOR_PORT = 9023
EMULATOR_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY *.whl /wheels/
RUN python3 -m venv /opt/gcs && /opt/gcs/bin/pip install -q --no-index --find-links /wheels \
gcp-storage-emulator \\
 && rm -rf /wheels
ENTRYPOINT ["/opt/gcs/bin/gcp-storage-emulator"]
"""


@pytest.fixture(scope="module")
def gcs_emulator_image(kind_cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The GCS emulator the service tests use (gcp-storage-emulator, the version installed here) in an image
    on the offline base image, built from wheels downloaded on the host, loaded into the node."""
    context = tmp_path_factory.mktemp("gcs-emulator")
    version = importlib.metadata.version("gcp-storage-emulator")
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:",
                    "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                    "--platform", f"manylinux2014_{platform.machine()}",
                    "-d", str(context), f"gcp-storage-emulator=={version}"], check=True, timeout=300)
    (context / "Dockerfile").write_text(EMULATOR_DOCKERFILE)
    base = subprocess.run([str(cluster.images.BASE_IMAGE_SH)], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    subprocess.run(["docker", "build", "-q", "--network", "none", "--force-rm",
                    "--build-arg", f"BASE_IMAGE={base}", "-t", EMULATOR_IMAGE, str(context)],
                   check=True, stdout=subprocess.DEVNULL, timeout=300)
    try:
        subprocess.run([cluster.kind_bin(), "load", "docker-image", EMULATOR_IMAGE,
                        "--name", kind_cluster.name], check=True, capture_output=True, timeout=300)
        yield EMULATOR_IMAGE
    finally:
        subprocess.run(["docker", "image", "rm", EMULATOR_IMAGE], check=False, capture_output=True)


def emulator_objects(image: str, bucket: str) -> list[dict]:
    labels = {"app.kubernetes.io/name": "gcs-emulator"}
    port = {"containerPort": EMULATOR_PORT, "name": "http"}
    container = {"name": "gcs", "image": image, "imagePullPolicy": "IfNotPresent", "ports": [port],
                 "args": ["start", "--host", "0.0.0.0", "--port", str(EMULATOR_PORT), "--in-memory",
                          "--default-bucket", bucket],
                 "readinessProbe": {"tcpSocket": {"port": EMULATOR_PORT}, "periodSeconds": 1}}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gcs"},
         "spec": {"selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gcs"},
         "spec": {"selector": labels, "ports": [{"port": EMULATOR_PORT, "targetPort": "http"}]}},
    ]


def upload_through_a_port_forward(kind_env: dict[str, str], namespace: str, video: Path, url: str) -> None:
    bucket, _, name = url.removeprefix("gs://").partition("/")
    port = free_port()
    forward = subprocess.Popen([cluster.kubectl_bin(), "-n", namespace, "port-forward", "svc/gcs",
                                f"{port}:{EMULATOR_PORT}"], env=kind_env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert forward.stdout is not None
        wait_until(lambda: "Forwarding from" in forward.stdout.readline(), timeout=30,
                   what="kubectl port-forward")
        client = storage.Client(client_options={"api_endpoint": f"http://127.0.0.1:{port}"},
                                use_auth_w_custom_endpoint=False)
        client.bucket(bucket).blob(name).upload_from_filename(str(video))
    finally:
        forward.terminate()
        forward.wait(10)


def test_a_camera_plays_a_video_from_a_pvc(operator, kind_cluster, kubectl, namespace,
                                           tmp_path: Path) -> None:
    write_video(tmp_path / "crowd.mp4", frames=50, fps=25, size=VIDEO_SIZE)
    example = list(yaml.safe_load_all((MANIFESTS / "examples" / "file-on-pvc.yaml").read_text()))
    (claim,) = [doc for doc in example if doc["kind"] == "PersistentVolumeClaim"]
    with node_volume(kind_cluster, kubectl, namespace, claim, [tmp_path / "crowd.mp4"]):
        kubectl("apply", "-n", namespace, "-f", str(MANIFESTS / "examples" / "file-on-pvc.yaml"))
        kubectl("-n", namespace, "wait", "--for=condition=Ready", "vcam/gate", "--timeout=180s", timeout=200)
        report = probe_from_a_pod(kubectl, namespace, "gate")
        assert report["ok"] and report["frames"] >= 30, report
        assert tuple(report["resolution"]) == VIDEO_SIZE and report["fps_declared"] == 25, report


def serve_emulator(kubectl, namespace: str, image: str, source: str) -> str:
    """The emulator as a Deployment and a Service in the namespace, with the source's bucket; its endpoint."""
    bucket = source.removeprefix("gs://").split("/")[0]
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(emulator_objects(image, bucket)))
    kubectl("-n", namespace, "rollout", "status", "deployment/gcs", "--timeout=120s", timeout=150)
    return f"http://gcs.{namespace}.svc:{EMULATOR_PORT}"


def gcs_camera(kubectl, namespace: str, endpoint: str, source: str | None = None) -> str:
    """manifests/examples/gcs.yaml with the Secret it names (an emulator asks for no key) and the emulator's
    endpoint; its name."""
    camera = yaml.safe_load((MANIFESTS / "examples" / "gcs.yaml").read_text())
    credentials = camera["spec"]["gcsCredentials"]
    kubectl("-n", namespace, "create", "secret", "generic", credentials["secretName"],
            f"--from-literal={credentials['key']}={{}}", check=False)
    camera["spec"]["gcsEndpoint"] = endpoint
    camera["spec"]["source"] = source or camera["spec"]["source"]
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(camera))
    return camera["metadata"]["name"]


EXAMPLE_SOURCE = yaml.safe_load((MANIFESTS / "examples" / "gcs.yaml").read_text())["spec"]["source"]


def test_a_camera_plays_gs_from_an_emulator_pod(operator, gcs_emulator_image, kind_env, kubectl, namespace,
                                                tmp_path: Path) -> None:
    endpoint = serve_emulator(kubectl, namespace, gcs_emulator_image, EXAMPLE_SOURCE)
    write_video(tmp_path / "plaza.mp4", frames=60, fps=30, size=VIDEO_SIZE)
    upload_through_a_port_forward(kind_env, namespace, tmp_path / "plaza.mp4", EXAMPLE_SOURCE)
    name = gcs_camera(kubectl, namespace, endpoint)
    kubectl("-n", namespace, "wait", "--for=condition=Ready", f"vcam/{name}", "--timeout=180s", timeout=200)
    report = probe_from_a_pod(kubectl, namespace, name)
    assert report["ok"] and report["frames"] >= 30, report
    assert tuple(report["resolution"]) == VIDEO_SIZE and report["fps_declared"] == 30, report


def test_a_missing_gs_object_is_reported_then_fixed(operator, gcs_emulator_image, kind_env, kubectl,
                                                    namespace, tmp_path: Path) -> None:
    """The kubelet's CrashLoopBackOff, with the camera's one line from its termination message, in the
    status."""
    endpoint = serve_emulator(kubectl, namespace, gcs_emulator_image, EXAMPLE_SOURCE)
    missing = EXAMPLE_SOURCE.replace(".mp4", "-missing.mp4")
    name = gcs_camera(kubectl, namespace, endpoint, missing)
    t0 = time.monotonic()

    degraded = wait_until(lambda: (c := condition(kubectl, namespace, name, "Degraded")).get("status")
                          == "True" and c.get("reason") == "CrashLoopBackOff" and c, timeout=60, interval=1,
                          what="Degraded with CrashLoopBackOff")
    took = time.monotonic() - t0
    assert f"drishti-stream: {missing}: bucket or object not found" in degraded["message"], degraded
    write_video(tmp_path / "plaza.mp4", frames=60, fps=30, size=VIDEO_SIZE)
    upload_through_a_port_forward(kind_env, namespace, tmp_path / "plaza.mp4", EXAMPLE_SOURCE)
    gcs_camera(kubectl, namespace, endpoint)  # the spec fixed: the object that exists
    t1 = time.monotonic()
    kubectl("-n", namespace, "wait", "--for=condition=Ready", f"vcam/{name}", "--timeout=180s", timeout=200)
    print(f"\n[missing gs:// object] Degraded after {took:.0f} s: {degraded['message']!r}; "
          f"Ready {time.monotonic() - t1:.0f} s after the fix")
