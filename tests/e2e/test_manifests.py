"""manifests/: generated from the chart, in sync, and they work with `kubectl apply` on the test control
plane.

The operator's pod is kwok's (no container runs), so the test runs the operator from the source tree as the
manifests' ServiceAccount, configured as their Deployment configures the container: the example camera getting
its Deployment, Service and Ready status proves the manifests' RBAC is enough.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from kubernetes import client

from hack.cluster.testing import wait_until
from hack.delivery import __main__ as delivery
from hack.delivery import generate
from tests.chart.tools import MANIFESTS, REPO, kubectl_json, run, service_account_kubeconfig
from tests.operator_process import OperatorProcess

NAMESPACE = generate.NAMESPACE
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))


def docs(path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_manifests_are_in_sync_with_the_chart() -> None:
    """`make manifests` would change nothing (the same command CI could run:
    python -m hack.delivery --check)."""
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO / "service"), str(REPO / "operator"), str(REPO)])}
    result = subprocess.run([sys.executable, "-m", "hack.delivery", "--check"], capture_output=True,
                            text=True, env=env, cwd=REPO, check=False, timeout=300)
    assert result.returncode == 0, f"{result.stderr}\nrun `make manifests` and commit the result"
    # ... and the make target runs the same generator (in sync, so it writes nothing)
    made = subprocess.run(["make", "manifests"], capture_output=True, text=True, cwd=REPO, check=False,
                          timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "python -m hack.delivery" in made.stdout and "wrote " not in made.stdout, made.stdout


def test_the_check_notices_a_stale_or_extra_file(tmp_path, monkeypatch, capsys) -> None:
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    files = {copy / path.relative_to(MANIFESTS): text for path, text in generate.expected().items()
             if MANIFESTS in path.parents}
    monkeypatch.setattr(generate, "MANIFESTS", copy)
    monkeypatch.setattr(generate, "expected", lambda: files)
    monkeypatch.setattr(generate, "REPO", tmp_path)
    assert delivery.main(["--check"]) == 0
    (copy / "operator.yaml").write_text(
        (copy / "operator.yaml").read_text().replace("drishti/operator:", "x/y:"))
    (copy / "examples" / "old.yaml").write_text("kind: List\n")
    assert delivery.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "stale:" in err and "operator.yaml" in err
    assert "not generated (remove it):" in err and "old.yaml" in err


def test_manifests_layout() -> None:
    assert sorted(path.relative_to(MANIFESTS).as_posix() for path in MANIFESTS.rglob("*.yaml")) == [
        "crd.yaml", "examples/file-on-pvc.yaml", "examples/gcs.yaml", "examples/synthetic.yaml",
        "operator.yaml"]
    (crd,) = docs(MANIFESTS / "crd.yaml")
    assert (crd["kind"] == "CustomResourceDefinition"
            and crd["metadata"]["name"] == "virtualcameras.drishti.io")
    operator = docs(MANIFESTS / "operator.yaml")
    assert [obj["kind"] for obj in operator] == [
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"]
    for obj in operator + docs(MANIFESTS / "crd.yaml"):
        labels = obj["metadata"].get("labels", {})
        assert "helm.sh/chart" not in labels and labels.get("app.kubernetes.io/managed-by") != "Helm", obj
    for obj in operator[1:]:
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_example_cameras_are_commented_and_namespace_free() -> None:
    kinds = {}
    for path in EXAMPLES:
        text = path.read_text()
        comment = [line for line in text.splitlines() if line.startswith("#")]
        assert len(comment) >= 4, f"{path.name}: explain the example in its header"
        assert f"kubectl apply -n default -f manifests/examples/{path.name}" in text
        for obj in docs(path):
            assert "namespace" not in obj["metadata"], f"{path.name}: apply it to any namespace with -n"
            kinds.setdefault(path.stem, []).append(obj["kind"])
    assert kinds == {"file-on-pvc": ["PersistentVolumeClaim", "VirtualCamera"], "gcs": ["VirtualCamera"],
                     "synthetic": ["VirtualCamera"]}
    sources = {path.stem: docs(path)[-1]["spec"]["source"] for path in EXAMPLES}
    assert sources["synthetic"] == "synthetic"
    assert sources["gcs"].startswith("gs://")
    assert not sources["file-on-pvc"].startswith("/")  # relative to the claim's mount


@pytest.fixture
def applied(kubectl_bin, k8s_env, k8s_api_client):
    """`kubectl apply -f manifests/` as the README says; afterwards the operator's workload is removed (the
    namespace, its ServiceAccount and the RBAC stay: tests/operator binds the same account with the same
    rules)."""
    out = run([kubectl_bin, "apply", "-f", MANIFESTS], env=k8s_env).stdout
    yield out
    run([kubectl_bin, "delete", "deployment,service", "-n", NAMESPACE, "drishti-operator",
         "--ignore-not-found"], env=k8s_env)


@pytest.mark.cluster
def test_kubectl_apply_manifests(applied, kubectl_bin, k8s_env, k8s_api_client, k8s_namespace,
                                 tmp_path) -> None:
    assert "customresourcedefinition.apiextensions.k8s.io/virtualcameras.drishti.io" in applied
    assert "deployment.apps/drishti-operator" in applied
    run([kubectl_bin, "wait", "--for=condition=Established", "crd/virtualcameras.drishti.io",
         "--timeout=30s"], env=k8s_env)
    run([kubectl_bin, "-n", NAMESPACE, "rollout", "status", "deployment/drishti-operator", "--timeout=60s"],
        env=k8s_env)

    # the examples, as their comments say (the Secret first, from a key file)
    key = tmp_path / "service-account.json"
    key.write_text('{"type": "service_account"}')
    run([kubectl_bin, "-n", k8s_namespace, "create", "secret", "generic", "gcs-reader",
         f"--from-file=key.json={key}"], env=k8s_env)
    for path in EXAMPLES:
        run([kubectl_bin, "apply", "-n", k8s_namespace, "-f", path], env=k8s_env)
    cameras = kubectl_json(kubectl_bin, k8s_env, "get", "vcam", "-n", k8s_namespace)["items"]
    assert sorted(cam["metadata"]["name"] for cam in cameras) == ["gate", "lobby", "plaza"]

    # the operator, as the manifests' Deployment runs it and logged in as their ServiceAccount
    deployment = kubectl_json(kubectl_bin, k8s_env, "get", "deployment", "drishti-operator", "-n", NAMESPACE)
    kubeconfig = service_account_kubeconfig(kubectl_bin, k8s_env, k8s_env["KUBECONFIG"], "drishti-operator",
                                            NAMESPACE, tmp_path)
    operator = OperatorProcess.like(deployment, kubeconfig, tmp_path / "operator.log")
    operator.start()
    custom, apps = client.CustomObjectsApi(k8s_api_client), client.AppsV1Api(k8s_api_client)
    try:
        def phase(name: str) -> str | None:
            cam = custom.get_namespaced_custom_object("drishti.io", "v1alpha1", k8s_namespace,
                                                      "virtualcameras", name)
            return (cam.get("status") or {}).get("phase")
        wait_until(lambda: phase("lobby") == "Ready", timeout=60, what=f"lobby Ready (log: {operator.log})")
        assert f"[{k8s_namespace}/lobby]" in operator.text()  # this operator did it
        # the file and gs:// cameras get their children too (their pods would read the claim and the Secret)
        for name in ("gate", "plaza"):
            wait_until(lambda name=name: apps.read_namespaced_deployment(name, k8s_namespace), timeout=30,
                       what=f"deployment {name}")
        gate = apps.read_namespaced_deployment("gate", k8s_namespace).spec.template.spec
        assert any(v.persistent_volume_claim and v.persistent_volume_claim.claim_name == "videos"
                   for v in gate.volumes)
        plaza = apps.read_namespaced_deployment("plaza", k8s_namespace).spec.template.spec
        assert any(v.secret and v.secret.secret_name == "gcs-reader" for v in plaza.volumes)
    finally:
        operator.stop()
    # what `kubectl get vcam` shows
    table = run([kubectl_bin, "get", "vcam", "-n", k8s_namespace], env=k8s_env).stdout
    assert table.split("\n")[0].split()[:4] == ["NAME", "SOURCE", "FPS", "READY"]
    assert f"ws://lobby.{k8s_namespace}.svc:8000/ws/stream" in table


@pytest.mark.cluster
def test_kubectl_server_side_dry_run_of_the_examples(kubectl_bin, k8s_env, k8s_namespace) -> None:
    """Each example passes the API server's validation, the CRD's CEL rules included, with nothing else
    there."""
    run([kubectl_bin, "apply", "--server-side", "--force-conflicts", "-f", MANIFESTS / "crd.yaml"],
        env=k8s_env)
    run([kubectl_bin, "wait", "--for=condition=Established", "crd/virtualcameras.drishti.io",
         "--timeout=30s"], env=k8s_env)
    for path in EXAMPLES:
        run([kubectl_bin, "apply", "--dry-run=server", "-n", k8s_namespace, "-f", path], env=k8s_env)
