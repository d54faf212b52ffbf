"""`helm install`, `helm test` and `helm uninstall` of charts/drishti on the test control plane.

The control plane's node is kwok's: pods are scheduled and become Running and Ready, but no container runs (so
no image is pulled, and the operator's image never runs). The tests therefore check what the cluster really
does with the chart (the API server accepts every object, the CRD is established, the Deployment becomes
Available, RBAC is enforced) and run the operator itself from the source tree, configured exactly as the
installed Deployment configures its container and logged in with a token of the chart's ServiceAccount: the
cameras of `cameras:` getting their Deployment and Service proves that the chart's RBAC, in either scope, is
enough.

`helm test`: kwok completes a Job's pod with exit code 0 without running it, so on this cluster `helm test`
proves that the test hook is accepted, runs as a Job and is cleaned up, not that its probes pass; its commands
run for real in tests/e2e/test_images.py, in the camera image, against a camera container.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.cluster.testing import wait_until
from tests.chart.tools import CHART, kubectl_json, run, service_account_kubeconfig, values_file
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

CRD = "virtualcameras.drishti.io"


class Release:
    """One helm release of the chart in a test namespace, uninstalled (and its leftovers listed) at the
    end."""

    def __init__(self, helm: Path, kubectl: Path, env: dict[str, str], namespace: str, tmp: Path) -> None:
        self.helm, self.kubectl, self.env, self.namespace, self.tmp = helm, kubectl, env, namespace, tmp
        self.name = f"r{secrets.token_hex(3)}"
        self.fullname = f"{self.name}-drishti-operator"
        self.installed = False

    def helm_run(self, *args: str, timeout: float = 180) -> str:
        return run([self.helm, *args, "--namespace", self.namespace], env=self.env, timeout=timeout).stdout

    def install(self, values: dict[str, Any] | None = None, *flags: str) -> str:
        if values is not None:
            flags = ("-f", str(values_file(values, self.tmp)), *flags)
        out = self.helm_run("install", self.name, str(CHART), *flags, "--wait", "--timeout", "120s")
        self.installed = True
        return out

    def uninstall(self) -> None:
        if self.installed:
            self.helm_run("uninstall", self.name, "--wait", "--timeout", "120s")
            self.installed = False

    def deployment(self) -> dict[str, Any]:
        return kubectl_json(self.kubectl, self.env, "get", "deployment", self.fullname, "-n", self.namespace)

    def operator(self, log: Path) -> OperatorProcess:
        kubeconfig = service_account_kubeconfig(self.kubectl, self.env, self.env["KUBECONFIG"], self.fullname,
                                                self.namespace, self.tmp)
        return OperatorProcess.like(self.deployment(), kubeconfig, log)

    def can(self, verb: str, resource: str, namespace: str) -> bool:
        account = f"system:serviceaccount:{self.namespace}:{self.fullname}"
        result = run([self.kubectl, "auth", "can-i", verb, resource, "-n", namespace, "--as", account],
                     env=self.env, check=False)
        return result.stdout.strip() == "yes"


@pytest.fixture
def release(helm_bin, kubectl_bin, k8s_env, k8s_namespace, tmp_path) -> Iterator[Release]:
    rel = Release(helm_bin, kubectl_bin, k8s_env, k8s_namespace, tmp_path)
    try:
        yield rel
    finally:
        if rel.installed:
            rel.helm_run("uninstall", rel.name, "--wait", "--timeout", "60s")


def camera_children(api: client.ApiClient, namespace: str, name: str) -> tuple[Any, Any]:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)

    def read(method: Any) -> Any:
        try:
            return method(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    return read(apps.read_namespaced_deployment), read(core.read_namespaced_service)


def camera(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object("drishti.io", "v1alpha1", namespace,
                                                                     "virtualcameras", name)


def release_objects(api: client.ApiClient, rel: Release) -> list[str]:
    """Everything still labelled with the release, in its namespace and cluster-wide."""
    selector = f"app.kubernetes.io/instance={rel.name}"
    ns = rel.namespace
    apps, core, rbac, batch = (client.AppsV1Api(api), client.CoreV1Api(api),
                               client.RbacAuthorizationV1Api(api), client.BatchV1Api(api))
    listings = {
        "deployment": apps.list_namespaced_deployment(ns, label_selector=selector).items,
        "service": core.list_namespaced_service(ns, label_selector=selector).items,
        "serviceaccount": core.list_namespaced_service_account(ns, label_selector=selector).items,
        "pod": core.list_namespaced_pod(ns, label_selector=selector).items,
        "role": rbac.list_namespaced_role(ns, label_selector=selector).items,
        "rolebinding": rbac.list_namespaced_role_binding(ns, label_selector=selector).items,
        "clusterrole": rbac.list_cluster_role(label_selector=selector).items,
        "clusterrolebinding": rbac.list_cluster_role_binding(label_selector=selector).items,
        "job": batch.list_namespaced_job(ns, label_selector=selector).items,
    }
    found = [f"{kind}/{item.metadata.name}" for kind, items in listings.items() for item in items]
    cameras = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "drishti.io", "v1alpha1", ns, "virtualcameras", label_selector=selector)["items"]
    found += [f"virtualcamera/{cam['metadata']['name']}" for cam in cameras]
    return found


def wait_release_gone(api: client.ApiClient, rel: Release, timeout: float = 60) -> None:
    wait_until(lambda: not release_objects(api, rel), timeout, 0.5,
               what=lambda: f"helm uninstall to leave nothing behind; left: {release_objects(api, rel)}")


def assert_installed(api: client.ApiClient, rel: Release, kubectl: Path) -> None:
    run([kubectl, "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=30s"], env=rel.env)
    status = rel.deployment()["status"]
    available = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("Available")
    assert available == "True", status
    assert status.get("readyReplicas") == 1


def test_install_test_uninstall_cluster_scope(release: Release, k8s_api_client, kubectl_bin,
                                              tmp_path) -> None:
    cameras = [{"name": "lobby", "spec": {"source": "synthetic", "fps": 15}},
               {"name": "gate", "spec": {"source": "synthetic:640x360", "replicas": 2, "port": 9000}}]
    # the README's command (its release and namespace are the test's)
    notes = release.install(None, "--create-namespace", "--set", "operator.image.tag=dev",
                            "--set", "camera.image.tag=dev", "--set", "cameras[0].name=lobby",
                            "--set", "cameras[0].spec.source=synthetic", "--set", "cameras[0].spec.fps=15",
                            "--set", "cameras[1].name=gate",
                            "--set", "cameras[1].spec.source=synthetic:640x360",
                            "--set", "cameras[1].spec.replicas=2", "--set", "cameras[1].spec.port=9000")
    assert "ws://lobby." + release.namespace + ".svc:8000/ws/stream" in notes
    # the NOTES' in-cluster probe: a pod the API server accepts (kwok cannot attach a terminal to it)
    (probe_line,) = [line for line in notes.splitlines() if " run probe " in line]
    probe_command = probe_line.strip().rstrip("\\").split() + \
        notes.splitlines()[notes.splitlines().index(probe_line) + 1].split()
    assert probe_command[:1] == ["kubectl"] and "--rm" in probe_command and "-it" in probe_command
    probe_command = [arg for arg in probe_command[1:] if arg not in ("--rm", "-it")]
    assert "--image=drishti/stream:dev" in probe_command
    run([kubectl_bin, *probe_command[:probe_command.index("--")], "--dry-run=server", "-o", "name",
         *probe_command[probe_command.index("--"):]], env=release.env)

    assert_installed(k8s_api_client, release, kubectl_bin)
    for cam in cameras:
        assert (camera(k8s_api_client, release.namespace, cam["name"])["spec"]["source"]
                == cam["spec"]["source"])
    # cluster scope: the operator may work in any namespace
    assert release.can("create", "deployments.apps", "some-other-namespace")
    assert not release.can("delete", "deployments.apps", release.namespace)

    operator = release.operator(tmp_path / "operator.log")
    assert "DRISHTI_OPERATOR_NAMESPACES" not in operator.env
    operator.start()
    try:
        for cam in cameras:
            name = cam["name"]
            deployment, service = wait_until(
                lambda name=name: all(camera_children(k8s_api_client, release.namespace, name))
                and camera_children(k8s_api_client, release.namespace, name),
                timeout=60, what=f"children of camera {name} (operator log: {operator.log})")
            assert deployment.spec.replicas == cam["spec"].get("replicas", 1)
            assert service.spec.ports[0].port == cam["spec"].get("port", 8000)
            # the camera image is the one the chart gave the operator
            assert deployment.spec.template.spec.containers[0].image == "drishti/stream:dev"
            status = wait_until(
                lambda name=name: (camera(k8s_api_client, release.namespace, name).get("status") or {})
                .get("phase") == "Ready" and camera(k8s_api_client, release.namespace, name)["status"],
                timeout=60, what=f"camera {name} Ready")
            port = cam["spec"].get("port", 8000)
            assert status["url"] == f"ws://{name}.{release.namespace}.svc:{port}/ws/stream"
        # this operator did the work (its log names the cameras), not some other one in the cluster
        assert (f"[{release.namespace}/lobby]" in operator.text()
                and f"[{release.namespace}/gate]" in operator.text())
        # what consumers read: the table, and the URL alone
        table = run([kubectl_bin, "get", "vcam", "-n", release.namespace], env=release.env).stdout
        assert table.splitlines()[0].split() == ["NAME", "SOURCE", "FPS", "READY", "URL", "AGE"]
        url = run([kubectl_bin, "get", "vcam", "lobby", "-n", release.namespace, "-o",
                   "jsonpath={.status.url}"], env=release.env).stdout
        assert url == f"ws://lobby.{release.namespace}.svc:8000/ws/stream"

        # the scale subresource: kubectl scales a camera, the operator scales its Deployment
        run([kubectl_bin, "scale", "vcam", "gate", "-n", release.namespace, "--replicas", "3"],
            env=release.env)
        wait_until(lambda: camera_children(k8s_api_client, release.namespace, "gate")[0].spec.replicas == 3,
                   timeout=30, what="gate scaled to 3")

        # helm test: the Job hook is created and completes (kwok), then is deleted (hook-succeeded)
        out = release.helm_run("test", release.name, "--timeout", "120s")
        assert f"TEST SUITE:     {release.name}-drishti-test" in out and "Succeeded" in out, out
    finally:
        operator.stop()

    release.uninstall()
    wait_release_gone(k8s_api_client, release)
    # the cameras' children go with their cameras (garbage collector, through ownerReferences)
    wait_until(lambda: camera_children(k8s_api_client, release.namespace, "lobby") == (None, None)
               and camera_children(k8s_api_client, release.namespace, "gate") == (None, None),
               timeout=60, what="camera children deleted")
    # ... and the CRD stays (Helm never deletes CRDs: deleting it would delete every camera in the cluster)
    run([kubectl_bin, "get", f"crd/{CRD}"], env=release.env)


def test_namespaced_scope_is_enough_for_the_operator(release: Release, k8s_api_client, kubectl_bin,
                                                     tmp_path) -> None:
    release.install({"rbac": {"scope": "namespaced"},
                     "cameras": [{"name": "lobby", "spec": {"source": "synthetic"}}]})
    assert_installed(k8s_api_client, release, kubectl_bin)
    assert release.can("create", "deployments.apps", release.namespace)
    assert release.can("patch", "virtualcameras.drishti.io/status", release.namespace)
    assert not release.can("create", "deployments.apps", "some-other-namespace")
    assert not release.can("list", "virtualcameras.drishti.io", "some-other-namespace")

    operator = release.operator(tmp_path / "operator.log")
    assert operator.env["DRISHTI_OPERATOR_NAMESPACES"] == release.namespace
    operator.start()
    try:
        wait_until(lambda: (camera(k8s_api_client, release.namespace, "lobby").get("status") or {})
                   .get("phase") == "Ready", timeout=60, what=f"camera lobby Ready (log: {operator.log})")
        assert all(camera_children(k8s_api_client, release.namespace, "lobby"))
        # a camera created afterwards is served too: by then the operator has made every call lobby needed
        client.CustomObjectsApi(k8s_api_client).create_namespaced_custom_object(
            "drishti.io", "v1alpha1", release.namespace, "virtualcameras",
            {"apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera", "metadata": {"name": "marker"},
             "spec": {"source": "synthetic"}})
        wait_until(lambda: (camera(k8s_api_client, release.namespace, "marker").get("status") or {})
                   .get("phase") == "Ready", timeout=60, what=f"camera marker Ready (log: {operator.log})")
        # a namespaced operator's RBAC errors would show up as 403 in its log
        assert "403" not in operator.text() and "Forbidden" not in operator.text(), operator.tail()
    finally:
        operator.stop()
    release.uninstall()
    wait_release_gone(k8s_api_client, release)
