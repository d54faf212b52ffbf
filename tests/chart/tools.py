"""Helpers of the chart and e2e tests: helm and kubectl as subprocesses, a ServiceAccount's kubeconfig, and the
operator from the source tree as a subprocess configured like the chart's Deployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from hack.cluster.testing import token_kubeconfig, wait_until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "drishti"
MANIFESTS = REPO / "manifests"


def run(cmd: list[str], *, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120,
        check: bool = True, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in cmd], env=env, input=stdin, capture_output=True, text=True,
                            timeout=timeout, check=False, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited with {result.returncode}:\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def values_file(values: dict[str, Any] | None, directory: Path | None = None) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, dir=directory) as file:
        yaml.safe_dump(values or {}, file)
    return Path(file.name)


def template(helm: Path, values: dict[str, Any] | None = None, *args: str, release: str = "demo",
             namespace: str = "cams", check: bool = True) -> list[dict[str, Any]] | subprocess.CompletedProcess[str]:
    """`helm template` of the chart: the rendered objects (or, with check=False, the completed process)."""
    path = values_file(values)
    try:
        result = run([helm, "template", release, CHART, "--namespace", namespace, "-f", path, *args], check=check)
    finally:
        path.unlink()
    if not check:
        return result
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def service_account_kubeconfig(kubectl: Path, env: dict[str, str], admin_kubeconfig: str, account: str,
                               namespace: str, directory: Path) -> Path:
    """A kubeconfig that authenticates with a token of this ServiceAccount (and nothing else)."""
    token = run([kubectl, "create", "token", account, "-n", namespace, "--duration=2h"], env=env).stdout.strip()
    return token_kubeconfig(admin_kubeconfig, token, account, directory / f"{account}.kubeconfig")


class Operator:
    """`python -m drishti_operator` from the source tree, with the environment of a rendered Deployment.

    Kubelet-less clusters (kwok) never run the operator's image, so the tests run the same program on the host,
    configured as the chart's Deployment configures the container, logged in as the chart's ServiceAccount.
    """

    def __init__(self, deployment: dict[str, Any], kubeconfig: Path, log: Path) -> None:
        self.env = container_env(deployment)
        self.kubeconfig = kubeconfig
        self.log = log
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DRISHTI_", "OTEL_", "KUBERNETES_"))}
        env.update(self.env)
        env.update({
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(REPO / "service"), str(REPO / "operator")]),
            # the chart's port is the container's; on the host, a free one
            "DRISHTI_OPERATOR_LIVENESS": f"http://127.0.0.1:{self.port}/healthz",
            "DRISHTI_OPERATOR_LOG_FORMAT": "plain",
            "DRISHTI_OPERATOR_STATUS_DELAY": "0.1",
        })
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "drishti_operator"], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=REPO)
        wait_until(self._live, timeout=timeout, what=f"the operator's liveness endpoint (log: {self.log})")

    def _live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def kubectl_json(kubectl: Path, env: dict[str, str], *args: str) -> Any:
    return json.loads(run([kubectl, *args, "-o", "json"], env=env).stdout)
