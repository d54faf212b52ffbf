"""The real-node tier: one kind cluster per session, on the offline node image (hack/kind/README.md).

    kind_cluster   session   KindCluster: the cluster ``drishti``, created for the session by the README's
                             `make kind-up` and deleted by its `make kind-down` (commands read from the
                             README)
    kubectl        session   callable: kubectl against it, returning the completed process
    operator       module    str: the namespace of the chart's operator (cluster scope), installed for the
                             module
    namespace      function  str: a fresh namespace for the test's cameras
    skaffold_bin, helm3_bin  the dev loop's tools (tests/e2e/conftest.py)
    kind_env       session   dict: os.environ with KUBECONFIG (the session's own file) and PATH holding
                             kubectl, helm and kind, as the README's commands expect them

The node image, kind and the project's images are built right after collection, so a cold build (minutes)
never counts against a test's timeout. The cluster is the session's own: when a kind cluster named ``drishti``
exists already (one of `make kind-up`, say), the tests fail rather than use or delete it, unless
DRISHTI_KIND_REUSE=1 says they may use it (it is then left running). DRISHTI_KIND_KEEP=1 keeps the session's
cluster for a look. A cluster the tests created and could not delete (a killed run) is deleted by the next
session.
On a failure, a test's report ends with the node's kubelet and containerd logs, the pods and the events.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hack.cluster import testing
from hack.kind import cluster, images
from tests import readme
from tests.chart.tools import CHART, run
from tests.e2e.conftest import helm3_bin, skaffold_bin  # noqa: F401  (the dev loop's tools, as fixtures here)

NAME = "drishti"
TESTS_OPERATOR_NAMESPACE = "drishti-tests"
KIND_DOOR = readme.commands(readme.code_blocks("A cluster on real nodes: kind")[0])
(KIND_UP,) = [c for c in KIND_DOOR if c.startswith("make kind-up")]
(KIND_DOWN,) = [c for c in KIND_DOOR if c.startswith("make kind-down")]


@dataclass
class KindCluster:
    name: str
    kubeconfig: Path
    created: bool

    @property
    def node(self) -> str:
        """The node's container."""
        return cluster.node_container(self.name)

    def diagnose(self, namespace: str | None = None) -> str:
        return cluster.diagnose(self.name, self.kubeconfig, namespace)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "kind_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kind)
    # the node restart disturbs every pod: after everything else
    items.sort(key=lambda item: item.path.name == "test_node_restart.py")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any("kind_cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n[kind] building (or finding up to date) the kind node image, kind, the project's images "
              "and the trace backend", flush=True)
        try:
            images.ensure_node_image()
            cluster.kind_bin()
            subprocess.run([str(cluster.BUILD_IMAGES_SH)], stdout=subprocess.DEVNULL, check=True)
            if any("jaeger" in getattr(item, "fixturenames", ()) for item in session.items):
                subprocess.run([str(images.TOOLS_SH), "jaeger"], stdout=subprocess.DEVNULL, check=True)
        except (subprocess.CalledProcessError, OSError) as exc:  # the kind tests then fail on the fixture
            print(f"[kind] {exc}", flush=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing kind test reports what the node saw: kubelet, containerd, pods, events."""
    outcome = yield
    report = outcome.get_result()
    kind: KindCluster | None = item.funcargs.get("kind_cluster") if hasattr(item, "funcargs") else None
    if report.failed and kind is not None:
        report.sections.append(("kind cluster", kind.diagnose()))


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[KindCluster]:
    if not images.is_built():
        pytest.fail(f"no kind node image {images.NODE_IMAGE}: `python -m hack.kind build` failed "
                    "(output above)")
    # a cluster the tests made and did not delete
    marker = images.binaries_dir().parent / f".tests-own-{NAME}"
    if cluster.exists(NAME) and marker.exists():
        cluster.down(NAME)
    existed = cluster.exists(NAME)
    if existed and os.environ.get("DRISHTI_KIND_REUSE") != "1":
        pytest.fail(f"a kind cluster named {NAME} exists already and is not the tests' own: delete it "
                    "(make kind-down), or set DRISHTI_KIND_REUSE=1 to let the tests use it")
    directory = Path(tempfile.mkdtemp(prefix="drishti-kind-"))
    kubeconfig = directory / "kubeconfig"
    # kind and kubectl write and read this file, not ~/.kube
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if not existed:
        marker.touch()
    try:
        with capture.global_and_fixture_disabled():
            up = subprocess.run(["bash", "-c", KIND_UP], cwd=images.REPO, env=env, check=False, timeout=1200)
        if up.returncode != 0:
            pytest.fail(f"`{KIND_UP}` exited with {up.returncode} (its output is above)")
        yield KindCluster(NAME, kubeconfig, created=not existed)
    finally:
        if not existed and os.environ.get("DRISHTI_KIND_KEEP") != "1":
            down = subprocess.run(["bash", "-c", KIND_DOWN], cwd=images.REPO, env=env, check=False,
                                  timeout=300)
            if down.returncode == 0:
                marker.unlink(missing_ok=True)
        kubeconfig.unlink(missing_ok=True)
        directory.rmdir()


@pytest.fixture(scope="session")
def kind_env(kind_cluster: KindCluster) -> dict[str, str]:
    tools = [Path(cluster.kubectl_bin()).parent, Path(testing.tool("helm")).parent,
             Path(cluster.kind_bin()).parent]
    path = os.pathsep.join([*(str(t) for t in tools), os.environ.get("PATH", "")])
    return {**os.environ, "KUBECONFIG": str(kind_cluster.kubeconfig), "PATH": path}


@pytest.fixture(scope="session")
def kubectl(kind_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = cluster.kubectl_bin()
    return lambda *args, **options: run([binary, *args], env=kind_env, **options)


@pytest.fixture(scope="module")
def operator(kind_cluster, kind_env, kubectl) -> Iterator[str]:
    """The chart's operator (cluster scope), installed for one module's cameras and uninstalled after it;
    yields its namespace."""
    subprocess.run(["helm", "install", "tests", str(CHART), "-n", TESTS_OPERATOR_NAMESPACE,
                    "--create-namespace", "--set", "operator.image.tag=dev", "--set", "camera.image.tag=dev",
                    "--wait", "--timeout=3m"],
                   env=kind_env, check=True, capture_output=True, timeout=240)
    try:
        yield TESTS_OPERATOR_NAMESPACE
    finally:
        subprocess.run(["helm", "uninstall", "tests", "-n", TESTS_OPERATOR_NAMESPACE, "--wait"], env=kind_env,
                       check=False, capture_output=True, timeout=180)
        kubectl("delete", "namespace", TESTS_OPERATOR_NAMESPACE, "--wait=true", check=False, timeout=180)


@pytest.fixture
def namespace(kind_cluster, kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"t-{request.node.name[5:30].replace('_', '-').rstrip('-')}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)
