"""One-shot pods on the kind cluster: run a command in an image, wait for it to end, return its exit code and
log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class PodResult:
    exit_code: int
    log: str
    reason: str


def start_pod(kubectl: Callable, namespace: str, name: str, image: str, command: list[str],
              env: dict[str, str] | None = None) -> None:
    """A pod (restartPolicy Never) running ``command``; `wait_pod` collects its end."""
    env_args = [f"--env={key}={value}" for key, value in (env or {}).items()]
    kubectl("-n", namespace, "run", name, f"--image={image}", "--restart=Never",
            "--image-pull-policy=IfNotPresent", *env_args, "--command", "--", *command)


def wait_pod(kubectl: Callable, namespace: str, name: str, timeout: float = 120) -> PodResult:
    """Wait for the pod's container to end; return its exit code and log; delete the pod."""
    try:
        deadline = time.monotonic() + timeout
        while True:
            pod = json.loads(kubectl("-n", namespace, "get", "pod", name, "-o", "json").stdout)
            states = [s.get("state", {}) for s in pod.get("status", {}).get("containerStatuses", [])]
            if states and "terminated" in states[0]:
                terminated = states[0]["terminated"]
                log = kubectl("-n", namespace, "logs", name, check=False).stdout
                return PodResult(terminated["exitCode"], log, terminated.get("reason", ""))
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} still running after {timeout}s: "
                                   f"{pod.get('status')}")
            time.sleep(1)
    finally:
        kubectl("-n", namespace, "delete", "pod", name, "--wait=false", check=False)


def run_pod(kubectl: Callable, namespace: str, name: str, image: str, command: list[str],
            env: dict[str, str] | None = None, timeout: float = 120) -> PodResult:
    """Run ``command`` in a new pod and wait for it to end; the pod is deleted afterwards."""
    start_pod(kubectl, namespace, name, image, command, env)
    return wait_pod(kubectl, namespace, name, timeout)
