"""Helpers of the chart and e2e tests: helm and kubectl as subprocesses, rendered objects and a
ServiceAccount's kubeconfig."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from hack.cluster.testing import token_kubeconfig

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
             namespace: str = "cams",
             check: bool = True) -> list[dict[str, Any]] | subprocess.CompletedProcess[str]:
    """`helm template` of the chart: the rendered objects (or, with check=False, the completed process)."""
    path = values_file(values)
    try:
        result = run([helm, "template", release, CHART, "--namespace", namespace, "-f", path, *args],
                     check=check)
    finally:
        path.unlink()
    if not check:
        return result
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [obj for obj in objects
            if obj["kind"] == kind and (name is None or obj["metadata"]["name"] == name)]


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
    token = run([kubectl, "create", "token", account, "-n", namespace, "--duration=2h"],
                env=env).stdout.strip()
    return token_kubeconfig(admin_kubeconfig, token, account, directory / f"{account}.kubeconfig")


def kubectl_json(kubectl: Path, env: dict[str, str], *args: str) -> Any:
    return json.loads(run([kubectl, *args, "-o", "json"], env=env).stdout)
