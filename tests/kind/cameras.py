"""What the kind tests do again and again: run the README's commands, make a camera, wait for it, probe it."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.chart.tools import REPO
from tests.kind.pods import run_pod

# The probe command of the chart's NOTES: `kubectl ... run probe ... \` and
# `drishti-stream probe URL --seconds N`.
NOTES_PROBE = re.compile(r"^\s*(kubectl .* run probe .*)\\\n\s*(drishti-stream probe \S+ --seconds \d+)$",
                         re.MULTILINE)
# A small 320x240 camera needs far less than the default request (250m): several fit on the 2-core node.
SMALL = {"requests": {"cpu": "50m", "memory": "128Mi"}}


def sh(command: str, env: dict[str, str], timeout: float = 300, check: bool = True,
       terminal: bool = False) -> subprocess.CompletedProcess:
    """Run a shell command as the README's reader would; ``terminal`` gives it one (`script`), for
    `kubectl -it`."""
    argv = ["script", "-qec", command, "/dev/null"] if terminal else ["bash", "-c", command]
    result = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"`{command}` exited with {result.returncode}:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def assert_probe_passes(command: str, url: str, env: dict[str, str]) -> None:
    """`kubectl run ... drishti-stream probe URL --seconds N` in a terminal: exit 0 and the probe's
    OK line."""
    result = sh(command, env, timeout=180, check=False, terminal=True)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    passed = re.search(rf"\bOK {re.escape(url)}: (\d+) frames", result.stdout)  # after the terminal's NUL
    assert passed and int(passed.group(1)) >= 30, result.stdout


def apply_camera(kubectl, namespace: str, name: str, **spec) -> None:
    body = {"apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera", "metadata": {"name": name},
            "spec": {"source": "synthetic:320x240", "fps": 15, "resources": SMALL, **spec}}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body))


def wait_ready(kubectl, namespace: str, name: str, timeout: int = 180) -> None:
    kubectl("-n", namespace, "wait", "--for=condition=Ready", f"vcam/{name}", f"--timeout={timeout}s",
            timeout=timeout + 20)
    kubectl("-n", namespace, "rollout", "status", f"deployment/{name}", f"--timeout={timeout}s",
            timeout=timeout + 20)


def condition(kubectl, namespace: str, name: str, kind: str) -> dict:
    camera = json.loads(kubectl("-n", namespace, "get", "vcam", name, "-o", "json").stdout)
    return next((c for c in camera.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def probe_from_a_pod(kubectl, namespace: str, camera: str, pod: str = "probe", check: bool = True) -> dict:
    """`drishti-stream probe` of the camera's Service URL, from a pod; its JSON report."""
    url = f"ws://{camera}.{namespace}.svc:8000/ws/stream"
    result = run_pod(kubectl, namespace, pod, "drishti/stream:dev",
                     ["drishti-stream", "probe", url, "--seconds", "3", "--json"], timeout=120)
    assert result.exit_code == 0 or not check, result
    return json.loads(result.log)


def default_storage_class(kubectl) -> str:
    classes = json.loads(kubectl("get", "storageclass", "-o", "json").stdout)["items"]
    default_annotation = "storageclass.kubernetes.io/is-default-class"
    defaults = [c["metadata"]["name"] for c in classes
                if c["metadata"].get("annotations", {}).get(default_annotation) == "true"]
    return defaults[0] if defaults else ""


@contextlib.contextmanager
def node_volume(kind_cluster, kubectl, namespace: str, claim: dict, files: list[Path],
                writable: bool = False) -> Iterator[None]:
    """A directory on the node holding ``files``, as a static PersistentVolume bound to ``claim`` (applied by
    the caller) before the claim exists, so that no provisioner gives it an empty volume instead; a
    ``writable`` one lets the camera's user (not root) write in it."""
    node = kind_cluster.node
    directory = f"/var/local/drishti-videos/{namespace}"
    subprocess.run(["docker", "exec", node, "mkdir", "-p", directory], check=True)
    for file in files:
        subprocess.run(["docker", "cp", str(file), f"{node}:{directory}/{file.name}"], check=True)
    mode = "a+rwX" if writable else "a+rX"
    subprocess.run(["docker", "exec", node, "chmod", "-R", mode, directory], check=True)
    volume = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"videos-{namespace}"},
        "spec": {
            "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
            "accessModes": claim["spec"]["accessModes"],
            "storageClassName": claim["spec"].get("storageClassName") or default_storage_class(kubectl),
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": namespace, "name": claim["metadata"]["name"]},
            "hostPath": {"path": directory, "type": "Directory"},
        },
    }
    try:
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(volume))
        yield
    finally:
        kubectl("delete", "persistentvolume", f"videos-{namespace}", "--wait=false", check=False)
        subprocess.run(["docker", "exec", node, "rm", "-rf", directory], check=False)
