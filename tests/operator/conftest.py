"""The operator under test: the real `python -m drishti_operator`, on the harness's control plane.

The CRD is installed from the generated file, the RBAC from `rbac.yaml`, and the operator runs as a subprocess
with a kubeconfig holding a token of its ServiceAccount: every test also proves that the RBAC is enough.

    vcam_crd           session   the CRD, installed and Established
    operator_process   session   OperatorProcess: the running operator (stop/start/restart, log)
    operator           function  the same, running (started again if a test stopped it)
    cams               function  Cameras: create/read/patch cameras and their children in a fresh namespace
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest
import yaml
from drishti_operator import GROUP, PLURAL, VERSION, crd
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.cluster.testing import token_kubeconfig, wait_until
from tests.operator_process import OperatorProcess

REPO = Path(__file__).resolve().parents[2]
RBAC_FILE = REPO / "operator" / "drishti_operator" / "rbac.yaml"
OPERATOR_NAMESPACE = "drishti-system"


def kubectl(kubectl_bin: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(kubectl_bin), *args], env=env, input=stdin, capture_output=True, text=True,
                            check=False,
                            timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="session")
def vcam_crd(k8s_api_client: client.ApiClient, kubectl_bin: Path, k8s_env: dict[str, str]) -> dict[str, Any]:
    """The CRD, applied from the committed file (the unit tests prove it is the generated one)."""
    kubectl(kubectl_bin, k8s_env, "apply", "--server-side", "--force-conflicts", "-f", str(crd.CRD_FILE))
    kubectl(kubectl_bin, k8s_env, "wait", "--for=condition=Established", "--timeout=30s",
            f"crd/{PLURAL}.{GROUP}")
    return yaml.safe_load(crd.CRD_FILE.read_text())


@pytest.fixture(scope="session")
def operator_kubeconfig(k8s_api_client: client.ApiClient, kubeconfig: str, kubectl_bin: Path,
                        k8s_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig that authenticates as the operator's ServiceAccount, bound by rbac.yaml."""
    core = client.CoreV1Api(k8s_api_client)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=OPERATOR_NAMESPACE)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    kubectl(kubectl_bin, k8s_env, "apply", "--server-side", "--force-conflicts", "-f", str(RBAC_FILE))
    token = kubectl(kubectl_bin, k8s_env, "create", "token", "drishti-operator", "-n", OPERATOR_NAMESPACE,
                    "--duration=24h").strip()
    return token_kubeconfig(kubeconfig, token, "drishti-operator",
                            tmp_path_factory.mktemp("operator") / "kubeconfig")


@pytest.fixture(scope="package")
def operator_process(vcam_crd: dict[str, Any], operator_kubeconfig: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """The operator of tests/operator, serving every namespace: stopped when this package's tests end, so that
    it never fights another test's operator over the same cameras (tests/chart runs its own)."""
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator-log") / "operator.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def operator(operator_process: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    if not operator_process.running:
        operator_process.start()
    yield operator_process
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(f"\n--- operator log (tail) ---\n{operator_process.tail()}")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Background(threading.Thread):
    """A test's helper thread, which stops (`stopping` is set) when its `running()` block ends, however the
    test ends: a failed test must not leave it at work for the rest of the session."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stopping.set()
            self.join(timeout=10)


class Cameras:
    """VirtualCameras and their children in one namespace, through the admin client."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    @staticmethod
    def body(name: str, **spec: Any) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualCamera", "metadata": {"name": name},
                "spec": {"source": "synthetic", **spec}}

    def create(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL,
                                                           self.body(name, **spec))

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, patch,
                                                          _content_type="application/merge-patch+json")

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self._raw(self.apps.read_namespaced_deployment, name)

    def service(self, name: str) -> dict[str, Any] | None:
        return self._raw(self.core.read_namespaced_service, name)

    def _raw(self, method: Any, name: str) -> dict[str, Any] | None:
        try:
            response = method(name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        try:
            return json.loads(response.data)
        finally:
            response.release_conn()

    def replica_sets(self, name: str) -> list[str]:
        selector = f"app.kubernetes.io/instance={name}"
        return sorted(rs.metadata.name for rs in
                      self.apps.list_namespaced_replica_set(self.namespace, label_selector=selector).items)

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        camera = self.get(name) or {}
        return next((c for c in (camera.get("status") or {}).get("conditions", [])
                     if c["type"] == kind), None)

    def wait_phase(self, name: str, phase: str, timeout: float = 60.0,
                   generation: int | None = None) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            camera = self.get(name)
            status = (camera or {}).get("status") or {}
            if status.get("phase") != phase:
                return None
            if generation is not None and status.get("observedGeneration") != generation:
                return None
            return camera
        return wait_until(reached, timeout=timeout, what=f"camera {self.namespace}/{name} phase {phase}")

    def wait_ready(self, name: str, timeout: float = 60.0, generation: int | None = None) -> dict[str, Any]:
        return self.wait_phase(name, "Ready", timeout=timeout, generation=generation)


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


@pytest.fixture
def cams(k8s_api_client: client.ApiClient, k8s_namespace: str) -> Cameras:
    return Cameras(k8s_api_client, k8s_namespace)
