"""A kind cluster on the offline node image: create it, wait until it serves, load the project's images,
delete it.

    up("drishti")                      # idempotent: reuses a running cluster of that name
    down("drishti")
    diagnose("drishti", kubeconfig)    # what explains a failure: kubelet and containerd logs, pods, events

kind writes the cluster's context (``kind-<name>``) into ``$KUBECONFIG``, else into the user's default
kubeconfig, as ``kind create cluster`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from hack.cluster import build
from hack.kind import images

CONFIG = images.HERE / "cluster.yaml"
BUILD_IMAGES_SH = images.REPO / "hack" / "docker" / "build-images.sh"
PROJECT_IMAGES = ("drishti/stream:dev", "drishti/operator:dev")
READY_TIMEOUT = 300  # seconds for the node and CoreDNS to be Ready after kubeadm init


def log(msg: str) -> None:
    print(f"[kind] {msg}", file=sys.stderr, flush=True)


def kind_bin() -> str:
    built = subprocess.run([str(images.TOOLS_SH), "kind"], stdout=subprocess.PIPE, text=True, check=True)
    return built.stdout.split()[-1]


def kubectl_bin() -> str:
    return str(build.ensure_built(only=("kubectl",)) / "kubectl")


def _kubeconfig_args(kubeconfig: Path | None) -> list[str]:
    return ["--kubeconfig", str(kubeconfig)] if kubeconfig else []


def exists(name: str) -> bool:
    result = subprocess.run([kind_bin(), "get", "clusters"], capture_output=True, text=True, check=False)
    return name in result.stdout.split()


def node_container(name: str) -> str:
    return f"{name}-control-plane"


def _kubectl(kubeconfig: Path | None, name: str, *args: str,
             check: bool = True) -> subprocess.CompletedProcess:
    cmd = [kubectl_bin(), *_kubeconfig_args(kubeconfig), "--context", f"kind-{name}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check)


def wait_ready(name: str, kubeconfig: Path | None, timeout: float = READY_TIMEOUT) -> None:
    """The node Ready, then CoreDNS rolled out: the cluster schedules pods and resolves Service names."""
    deadline = time.monotonic() + timeout
    for what in (["wait", "--for=condition=Ready", "node", "--all"],
                 ["-n", "kube-system", "rollout", "status", "deployment/coredns"]):
        left = max(1, int(deadline - time.monotonic()))
        result = _kubectl(kubeconfig, name, *what, f"--timeout={left}s", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"cluster {name}: `kubectl {' '.join(what)}` failed: {result.stderr.strip()}\n"
                               + diagnose(name, kubeconfig))


def load_images(name: str) -> None:
    """Build (or find up to date) the project's images, then load them into the node's containerd."""
    subprocess.run([str(BUILD_IMAGES_SH)], stdout=subprocess.DEVNULL, check=True)
    subprocess.run([kind_bin(), "load", "docker-image", *PROJECT_IMAGES, "--name", name], check=True)


def up(name: str = "drishti") -> None:
    node_image = images.ensure_node_image()
    kind = kind_bin()
    if exists(name):
        log(f"cluster {name} exists; reusing it")
        subprocess.run([kind, "export", "kubeconfig", "--name", name], check=True)
    else:
        t0 = time.monotonic()
        subprocess.run([kind, "create", "cluster", "--name", name, "--config", str(CONFIG),
                        "--image", node_image], check=True)
        log(f"kind create cluster: {time.monotonic() - t0:.0f}s")
    t0 = time.monotonic()
    wait_ready(name, None)
    log(f"node and CoreDNS Ready after {time.monotonic() - t0:.0f}s more")
    t0 = time.monotonic()
    load_images(name)
    log(f"{' and '.join(PROJECT_IMAGES)} loaded in {time.monotonic() - t0:.0f}s")


def down(name: str = "drishti") -> None:
    subprocess.run([kind_bin(), "delete", "cluster", "--name", name], check=True)


def _tail(cmd: list[str], lines: int) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def _unready_pods(kubectl: list[str], scope: list[str]) -> list[tuple[str, str]]:
    listed = subprocess.run([*kubectl, "get", "pods", *scope, "-o", "json"], capture_output=True, text=True,
                            check=False)
    if listed.returncode != 0:
        return []
    pods = json.loads(listed.stdout)["items"]
    return [(pod["metadata"]["namespace"], pod["metadata"]["name"]) for pod in pods
            if not all(s.get("ready") for s in pod.get("status", {}).get("containerStatuses") or [{}])]


def diagnose(name: str, kubeconfig: Path | None, namespace: str | None = None, lines: int = 40) -> str:
    """What explains a failure on the node: the kubelet's and containerd's logs, the pods, their events, and
    the logs of the pods that are not ready."""
    node = node_container(name)
    scope = ["-n", namespace] if namespace else ["-A"]
    kubectl = [kubectl_bin(), *_kubeconfig_args(kubeconfig), "--context", f"kind-{name}"]
    sections = {
        "kubelet": ["docker", "exec", node, "journalctl", "-u", "kubelet", "--no-pager", "-q"],
        "containerd": ["docker", "exec", node, "journalctl", "-u", "containerd", "--no-pager", "-q"],
        "pods": [*kubectl, "get", "pods", *scope, "-o", "wide"],
        "events": [*kubectl, "get", "events", *scope, "--sort-by=.lastTimestamp"],
    }
    for pod_namespace, pod in _unready_pods(kubectl, scope)[:5]:
        sections[f"logs of {pod_namespace}/{pod}"] = [*kubectl, "logs", "-n", pod_namespace, pod,
                                                      "--all-containers", "--tail", str(lines)]
    return "\n".join(f"--- {title} (last {lines} lines) ---\n{_tail(cmd, lines)}"
                     for title, cmd in sections.items())
