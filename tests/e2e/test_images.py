"""The two images, built by hack/docker/build-images.sh from the one Dockerfile, run for real in Docker.

Containers use the host's network where they must reach each other or the test control plane by name
(`--network host` and `--add-host`, as hack/docker/README.md advises for this sandbox); the camera alone is
published on a loopback port, as a user would run it.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest
import yaml

from hack.cluster.testing import wait_until
from tests import readme
from tests.chart.tools import (
    REPO,
    container_env,
    kubectl_json,
    one,
    run,
    service_account_kubeconfig,
    template,
    values_file,
)
from tests.ports import free_port

pytestmark = pytest.mark.docker
VERSION = "1.0.0"


class Containers:
    """`docker run -d` containers of one test, removed at the end (their logs shown when the test fails)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def start(self, *args: str) -> str:
        name = f"drishti-e2e-{secrets.token_hex(4)}"
        run(["docker", "run", "-d", "--name", name, *args])
        self.names.append(name)
        return name

    def logs(self, name: str) -> str:
        result = run(["docker", "logs", name], check=False)
        return result.stdout + result.stderr

    def remove(self) -> None:
        for name in self.names:
            run(["docker", "rm", "-f", name], check=False)


@pytest.fixture
def containers() -> Iterator[Containers]:
    box = Containers()
    try:
        yield box
    finally:
        box.remove()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def probe(url: str, seconds: float = 3) -> dict:
    """The probe CLI of the host's venv, as a consumer outside the container."""
    result = run([REPO / ".venv" / "bin" / "drishti-stream", "probe", url, "--seconds", str(seconds),
                  "--json"], check=False, timeout=60)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], result.stdout + result.stderr
    return report


def test_both_targets_build(images) -> None:
    assert images == {"service": "drishti/stream:dev", "operator": "drishti/operator:dev"}
    for target, ref in images.items():
        info = json.loads(run(["docker", "image", "inspect", ref]).stdout)[0]
        assert info["Config"]["User"] == "10001:10001", f"{target}: non-root user"
        labels = info["Config"]["Labels"]
        assert labels["org.opencontainers.image.version"] == VERSION
        assert labels["org.opencontainers.image.title"] == ("drishti-stream" if target == "service"
                                                            else "drishti-operator")
    assert json.loads(run(["docker", "image", "inspect", images["service"]]).stdout)[0]["Config"][
        "Healthcheck"]


def test_service_container_streams_on_the_synthetic_default(images, containers) -> None:
    port = free_port()
    name = containers.start("-p", f"127.0.0.1:{port}:8000", images["service"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), timeout=60,
               what=f"/ready of the camera container ({name})")
    report = probe(f"ws://127.0.0.1:{port}/ws/stream")
    assert report["fps_declared"] == 30 and report["resolution"] == [1280, 720]
    info = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read())
    assert "synthetic" in json.dumps(info)


def write_clip(path, size=(320, 240), frames=40, fps=20) -> None:
    """A small MP4 (OpenCV's mp4v), readable by the container's user."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), (index * 6) % 256, dtype=np.uint8))
    writer.release()
    path.chmod(0o644)


def test_service_container_plays_a_video_from_a_mounted_directory(images, containers, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    write_clip(data / "crowd.mp4")
    port = free_port()
    name = containers.start("-p", f"127.0.0.1:{port}:8000", "-v", f"{data}:/data:ro",
                            "-e", "DRISHTI_VIDEO_PATH=/data/crowd.mp4", images["service"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), timeout=60,
               what=f"/ready of the camera container ({name})\n{containers.logs(name)}")
    report = probe(f"ws://127.0.0.1:{port}/ws/stream")
    assert report["resolution"] == [320, 240] and report["fps_declared"] == 20


def test_service_container_with_a_missing_video_exits_with_one_clear_line(images) -> None:
    result = run(["docker", "run", "--rm", "-e", "DRISHTI_VIDEO_PATH=/data/missing.mp4", images["service"]],
                 check=False, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "/data/missing.mp4" in lines[0] and "no such video file" in lines[0], lines[0]


def test_operator_command_without_its_extra_says_what_to_install(images) -> None:
    """The camera's image is `pip install drishti-stream` without the `operator` extra: its `drishti-operator`
    command must say what is missing in one line, not die with a traceback."""
    result = run(["docker", "run", "--rm", "--entrypoint", "drishti-operator", images["service"]],
                 check=False, timeout=120)
    assert result.returncode == 1, result
    assert result.stdout == "", result
    assert result.stderr == ("drishti-operator: module 'kopf' is missing; install the operator's "
                             "dependencies with pip install 'drishti-stream[operator]'\n")


def test_operator_image_reports_its_version(images) -> None:
    result = run(["docker", "run", "--rm", images["operator"], "--version"], timeout=120)
    assert result.stdout.strip() == f"drishti-operator {VERSION}"


def restricted(extra: list[str] | None = None) -> list[str]:
    """`docker run` flags for the chart's restricted securityContext: uid 10001, read-only root, no
    capabilities, no privilege escalation, a writable /tmp (the chart's emptyDir)."""
    return ["--user", "10001:10001", "--read-only", "--tmpfs", "/tmp:mode=1777", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", *(extra or [])]


@pytest.mark.cluster
def test_helm_test_hook_passes_against_real_containers(images, containers, helm_bin, kubectl_bin, k8s_env,
                                                       k8s_namespace, k8s_api_client, tmp_path) -> None:
    """The chain kwok cannot run, run in Docker: the chart is installed (namespaced scope) on the control
    plane; the operator image runs with the installed Deployment's environment and the chart's ServiceAccount;
    the camera image runs with the environment the operator wrote into the camera's Deployment; then the
    `helm test` Job's own command, in its own image and security context, reaches both by their Service DNS
    names and passes. With the camera stopped, the same command fails."""
    namespace, release = k8s_namespace, "e2e"
    camera_port, health_port = free_port(), free_port()
    values = {"rbac": {"scope": "namespaced"}, "operator": {"healthPort": health_port},
              "camera": {"image": {"repository": "drishti/stream", "tag": "dev"}},
              "cameras": [{"name": "lobby", "spec": {"source": "synthetic:640x360", "fps": 10,
                                                     "port": camera_port}}]}
    path = values_file(values, tmp_path)
    run([helm_bin, "install", release, REPO / "charts" / "drishti", "-n", namespace, "-f", path, "--wait",
         "--timeout", "120s"], env=k8s_env)
    operator_name = f"{release}-drishti-operator"

    # the operator image, configured as the installed Deployment configures it
    deployment = kubectl_json(kubectl_bin, k8s_env, "get", "deployment", operator_name, "-n", namespace)
    kubeconfig = service_account_kubeconfig(kubectl_bin, k8s_env, k8s_env["KUBECONFIG"], operator_name,
                                            namespace, tmp_path)
    kubeconfig.chmod(0o644)  # readable by the container's uid
    env_flags = [flag for key, value in container_env(deployment).items()
                 for flag in ("-e", f"{key}={value}")]
    op = containers.start("--network", "host", *restricted(), "-v", f"{kubeconfig}:/kube/config:ro",
                          "-e", "KUBECONFIG=/kube/config", *env_flags, images["operator"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{health_port}/healthz"), timeout=90,
               what=f"the operator container's liveness endpoint\n{containers.logs(op)}")

    # the camera's Deployment, written by the operator container; its pod, run in Docker
    def camera_deployment() -> dict | None:
        result = run([kubectl_bin, "get", "deployment", "lobby", "-n", namespace, "-o", "json"], env=k8s_env,
                     check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None
    camera = wait_until(camera_deployment, timeout=60, what=f"camera Deployment\n{containers.logs(op)}")
    pod = camera["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "drishti/stream:dev"
    cam_env = [flag for item in container["env"] for flag in ("-e", f"{item['name']}={item['value']}")]
    cam = containers.start("--network", "host", *restricted(["--tmpfs", "/var/cache/drishti:mode=1777"]),
                           *cam_env, container["image"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{camera_port}/ready"), timeout=60,
               what=f"the camera container's /ready\n{containers.logs(cam)}")

    # the helm test Job, exactly as the chart renders it, run in Docker with the Service names resolving here
    job = one(template(helm_bin, values, "--show-only", "templates/tests/test-stream.yaml", release=release,
                       namespace=namespace), "Job")
    spec = job["spec"]["template"]["spec"]
    (test,) = spec["containers"]
    assert test["image"] == "drishti/stream:dev"
    hosts = ["--add-host", f"{operator_name}.{namespace}.svc:127.0.0.1",
             "--add-host", f"lobby.{namespace}.svc:127.0.0.1"]

    def helm_test_command() -> subprocess.CompletedProcess[str]:
        return run(["docker", "run", "--rm", "--network", "host", *hosts, *restricted(),
                    "--entrypoint", test["command"][0], test["image"], *test["command"][1:], *test["args"]],
                   check=False, timeout=120)
    result = helm_test_command()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "operator: live" in result.stdout
    assert f"OK ws://lobby.{namespace}.svc:{camera_port}/ws/stream" in result.stdout

    run(["docker", "stop", "-t", "2", cam])
    failed = helm_test_command()
    assert failed.returncode != 0, failed.stdout
    run([helm_bin, "uninstall", release, "-n", namespace, "--wait", "--timeout", "60s"], env=k8s_env)


def test_service_container_keeps_cloud_runs_contract(images, containers) -> None:
    """Cloud Run (not reachable here) runs the image with PORT set (8080 by default) and its K_* variables, as
    any user, and routes requests to $PORT: the camera must listen there and stream."""
    port = free_port()
    name = containers.start("--network", "host", "-e", f"PORT={port}", "-e", "K_SERVICE=drishti-lobby",
                            "-e", "K_REVISION=drishti-lobby-00001-abc", "-e", "K_CONFIGURATION=drishti-lobby",
                            "-e", "DRISHTI_EPOCH=1767225600", "--cpus", "1", "--memory", "1g",
                            images["service"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), timeout=60,
               what=f"/ready on $PORT ({name})\n{containers.logs(name)}")
    report = probe(f"ws://127.0.0.1:{port}/ws/stream")
    # a fixed epoch: every instance sends the same frame ids at the same times
    assert report["first_frame_id"] > 30 * (time.time() - 1767225600) - 300


def test_manifests_images_build_with_the_readme_tags(images) -> None:
    """The README builds the images under the tags manifests/operator.yaml names (for `kind load` or a
    push)."""
    docs = [d for d in yaml.safe_load_all((REPO / "manifests" / "operator.yaml").read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    operator_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    camera_image = container_env(deployment)["DRISHTI_OPERATOR_CAMERA_IMAGE"]
    assert (operator_image, camera_image) == (f"drishti/operator:{VERSION}", f"drishti/stream:{VERSION}")
    # the README's build line, as written
    (build,) = [c for c in readme.commands(readme.code_blocks("`kubectl apply`")[0])
                if "build-images.sh" in c]
    assert (f"DRISHTI_OPERATOR_IMAGE={operator_image}" in build
            and f"DRISHTI_STREAM_IMAGE={camera_image}" in build)
    try:
        built = run(["bash", "-c", build], cwd=REPO, timeout=1800).stdout.split()
        assert sorted(built) == sorted([operator_image, camera_image])
        assert run(["docker", "run", "--rm", operator_image, "--version"]).stdout.strip() == \
            f"drishti-operator {VERSION}"
    finally:
        for image in (operator_image, camera_image):  # only the tag goes; the :dev images share the layers
            run(["docker", "image", "rm", image], check=False)


# The README's in-cluster consumer (section "Consuming a camera"): the camera's Service URL from the
# environment.
(IN_CLUSTER_CONSUMER,) = readme.code_blocks("Consuming a camera in the cluster", "python")


def test_in_cluster_consumer_example(images, containers) -> None:
    """The README's consumer, in the camera image (which has websockets), reaching a camera by its Service
    name."""
    port = free_port()
    name = containers.start("--network", "host", "-e", f"PORT={port}",
                            "-e", "DRISHTI_VIDEO_PATH=synthetic:320x240", images["service"])
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ready"), timeout=60, what=f"/ready ({name})")
    url = f"ws://lobby.drishti-system.svc:{port}/ws/stream"
    result = run(["docker", "run", "--rm", "--network", "host",
                  "--add-host", "lobby.drishti-system.svc:127.0.0.1",
                  "-e", f"CAMERA_URL={url}", *restricted(), "--entrypoint", "timeout", images["service"],
                  "4", "python3", "-c", IN_CLUSTER_CONSUMER], check=False, timeout=60)
    assert result.returncode == 124, result.stderr  # still streaming when stopped
    rows = [line.split() for line in result.stdout.splitlines()]
    assert len(rows) >= 30, result.stdout
    ids = [int(row[0]) for row in rows]
    assert ids == sorted(set(ids)) and all(int(row[2]) > 0 for row in rows)
