"""The dev loop as the README tells it, on the kind cluster: `skaffold dev --port-forward` builds both images,
loads them into the node and deploys the chart; the forwarded port serves the stream; an edit to a source file
(in a copy of the repository) is rebuilt and redeployed, and the new build serves; stopping skaffold removes
the release. `skaffold run` and `skaffold delete` likewise.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster.testing import wait_until
from hack.kind import cluster
from tests import readme
from tests.chart.tools import REPO
from tests.images import removing_new_tags

pytestmark = pytest.mark.timeout(1500)

(DEV,) = [c.split("#")[0].strip() for c in readme.commands(readme.code_blocks("`skaffold dev` on kind")[0])
          if c.startswith("skaffold dev")]
FORWARDED = re.compile(r"Port forwarding service/lobby in namespace drishti-system, remote port 8000 -> "
                       r"http://127\.0\.0\.1:(\d+)")
EDIT = ('    __version__ = version("drishti-stream")\n',
        '    __version__ = version("drishti-stream") + "+edited"\n')


def copy_of_the_repository(target: Path) -> Path:
    """The tracked files, as a clone would have them (plus what the working tree changed)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def forwarded_port(log: Path, dev: subprocess.Popen) -> int | None:
    """The local port of skaffold's latest forward of the camera's Service."""
    if dev.poll() is not None:
        raise AssertionError(f"skaffold dev exited with {dev.returncode}:\n{log.read_text()[-3000:]}")
    found = FORWARDED.findall(log.read_text())
    return int(found[-1]) if found else None


def info(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return json.load(response)
    except OSError:
        return None


@pytest.fixture
def skaffold_repo(kind_cluster, kind_env, skaffold_bin, helm3_bin,
                  tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the repository to run skaffold in, and skaffold's environment; the images skaffold builds in
    the test are removed afterwards (the node keeps its own copies until the cluster goes)."""
    repo = copy_of_the_repository(tmp_path / "repo")
    # what the README's step before, `make kind-up`, leaves in a clone: the wheelhouse the Dockerfile copies
    # (skaffold hashes the build's inputs before its hooks would make it)
    shutil.copytree(REPO / "build" / "wheelhouse", repo / "build" / "wheelhouse")
    base = subprocess.run([str(cluster.images.BASE_IMAGE_SH)], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    # helm 3 before helm 4
    path = ":".join([str(helm3_bin.parent), str(skaffold_bin.parent), kind_env["PATH"]])
    with removing_new_tags():
        yield repo, {**kind_env, "PATH": path, "DRISHTI_BASE_IMAGE": base, "DOCKER_BUILDKIT": "0",
                     "SKAFFOLD_UPDATE_CHECK": "false", "SKAFFOLD_INTERACTIVE": "false"}


def test_skaffold_dev_rebuilds_and_redeploys_an_edit(skaffold_repo, kubectl, tmp_path: Path) -> None:
    repo, env = skaffold_repo
    log = tmp_path / "skaffold.log"
    # --no-prune: on exit skaffold would otherwise delete older images of the same repositories
    # (drishti/*:dev)
    with open(log, "w") as out:
        dev = subprocess.Popen(["bash", "-c", f"exec {DEV} --no-prune=true"], cwd=repo, env=env, stdout=out,
                               stderr=subprocess.STDOUT)
    try:
        t0 = time.monotonic()
        port = wait_until(lambda: forwarded_port(log, dev), timeout=1200, interval=2,
                          what=lambda: f"skaffold's port-forward\n{log.read_text()[-3000:]}")
        first = wait_until(lambda: info(port), timeout=120, what="GET / through the port-forward")
        deployed = time.monotonic() - t0
        probe = subprocess.run([sys.executable, "-m", "drishti_stream", "probe",
                                f"ws://127.0.0.1:{port}/ws/stream", "--seconds", "3", "--json"],
                               check=False, capture_output=True, text=True, timeout=60)
        report = json.loads(probe.stdout)
        assert probe.returncode == 0 and report["ok"] and report["frames"] >= 30, report

        source = repo / "service" / "drishti_stream" / "__init__.py"
        assert EDIT[0] in source.read_text()
        source.write_text(source.read_text().replace(*EDIT))
        t1 = time.monotonic()
        edited = wait_until(lambda: (i := info(forwarded_port(log, dev)))
                            and i["version"].endswith("+edited") and i,
                            timeout=900,
                            interval=2, what=lambda: f"the edited build serving\n{log.read_text()[-3000:]}")
        edit_to_serving = time.monotonic() - t1
        assert edited["version"] == first["version"] + "+edited"
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(300)
        except subprocess.TimeoutExpired:
            dev.kill()
    assert dev.returncode == 0, log.read_text()[-3000:]
    released = kubectl("-n", "drishti-system", "get", "deployments", "-o", "name", check=False).stdout
    assert "drishti-operator" not in released, "stopping skaffold left the release behind"
    print(f"\n[skaffold dev] first deploy serving after {deployed:.0f} s; "
          f"edit to serving {edit_to_serving:.0f} s")


def test_skaffold_run_deploys_real_pods_and_delete_removes_them(skaffold_repo, kubectl) -> None:
    """`skaffold run` (the README's skaffold.yaml, once): both images built and loaded, the operator and the
    camera `lobby` Running and Ready on the node; `skaffold delete` removes the release."""
    repo, env = skaffold_repo
    run = subprocess.run(["skaffold", "run", "--port-forward=false", "--no-prune=true"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=1200, check=False)
    try:
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        kubectl("-n", "drishti-system", "wait", "--for=condition=Ready", "vcam/lobby", "--timeout=180s",
                timeout=200)
        pods = json.loads(kubectl("-n", "drishti-system", "get", "pods", "-o", "json").stdout)["items"]
        running = {p["metadata"]["labels"].get("app.kubernetes.io/component"): p for p in pods
                   if all(s.get("ready") for s in p["status"].get("containerStatuses", [{}]))}
        assert {"operator", "camera"} <= running.keys(), [p["metadata"]["name"] for p in pods]
        image = running["camera"]["spec"]["containers"][0]["image"]
        assert image.startswith("drishti/stream:") and not image.endswith(":dev"), image  # skaffold's build
    finally:
        subprocess.run(["skaffold", "delete"], cwd=repo, env=env, capture_output=True, timeout=300,
                       check=False)
    kubectl("-n", "drishti-system", "wait", "--for=delete", "deployment", "--all", "--timeout=120s",
            timeout=150)
    left = kubectl("-n", "drishti-system", "get", "deployments", "-o", "name").stdout
    assert not left.strip(), left
