"""`helm lint` and `helm template` of charts/drishti with various values: what each value renders, the
restricted security context, the RBAC toggle, the cameras list, the helm test Job, NOTES, and what
values.schema.json refuses."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml
from drishti_operator.__main__ import parse_args

from tests.chart.tools import CHART, container_env, find, one, run, template, values_file

CAMERAS = {"cameras": [
    {"name": "lobby", "spec": {"source": "synthetic", "fps": 15}},
    {"name": "gate", "namespace": "site-b", "labels": {"site": "b"},
     "spec": {"source": "crowd.mp4", "port": 9000, "volume": {"claimName": "videos"}}},
    {"name": "spare", "spec": {"source": "synthetic", "replicas": 0}},
]}


def refused(helm_bin, values: dict) -> str:
    result = template(helm_bin, values, check=False)
    assert result.returncode != 0, f"helm accepted {values}"
    return result.stderr


@pytest.mark.parametrize("values", [
    {},
    {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["site-a", "site-b"]},
    CAMERAS,
    {"operator": {"image": {"repository": "registry.example/drishti/operator",
                            "digest": "sha256:" + "a" * 64}}},
])
def test_helm_lint_strict(helm_bin, values: dict) -> None:
    path = values_file(values)
    try:
        result = run([helm_bin, "lint", CHART, "--strict", "--namespace", "site-a", "-f", path])
    finally:
        path.unlink()
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_default_render(helm_bin) -> None:
    objects = template(helm_bin)
    kinds = sorted((obj["kind"], obj["metadata"]["name"]) for obj in objects)
    assert kinds == [
        ("ClusterRole", "demo-drishti-operator"),
        ("ClusterRoleBinding", "demo-drishti-operator"),
        ("Deployment", "demo-drishti-operator"),
        ("Job", "demo-drishti-test"),
        ("Service", "demo-drishti-operator"),
        ("ServiceAccount", "demo-drishti-operator"),
    ]
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/part-of"] == "drishti"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "1.0.0"
        assert labels["helm.sh/chart"] == "drishti-1.0.0"
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "cams"


def test_release_named_like_the_chart_is_not_repeated(helm_bin) -> None:
    objects = template(helm_bin, release="drishti")
    assert one(objects, "Deployment")["metadata"]["name"] == "drishti-operator"
    objects = template(helm_bin, {"fullnameOverride": "cams"})
    assert one(objects, "Deployment")["metadata"]["name"] == "cams-operator"


def test_crd_only_from_crds_dir(helm_bin) -> None:
    assert not find(template(helm_bin, CAMERAS), "CustomResourceDefinition")
    crds = find(template(helm_bin, {}, "--include-crds"), "CustomResourceDefinition")
    assert [crd["metadata"]["name"] for crd in crds] == ["virtualcameras.drishti.io"]


def test_operator_pod_is_restricted(helm_bin) -> None:
    pod = one(template(helm_bin), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "runAsUser": 10001, "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["serviceAccountName"] == "demo-drishti-operator"
    assert container["resources"]["limits"]["memory"]


def test_operator_liveness_is_kopfs_endpoint(helm_bin) -> None:
    deployment = one(template(helm_bin, {"operator": {"healthPort": 9090}}), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"name": "health", "containerPort": 9090, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # the operator reads the endpoint from the environment the chart sets
    assert container_env(deployment)["DRISHTI_OPERATOR_LIVENESS"] == "http://0.0.0.0:9090/healthz"


def test_operator_runs_alone(helm_bin) -> None:
    spec = one(template(helm_bin), "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # standalone Kopf: never two at once


def test_images_default_to_app_version(helm_bin) -> None:
    deployment = one(template(helm_bin), "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "drishti/operator:1.0.0"
    assert container_env(deployment)["DRISHTI_OPERATOR_CAMERA_IMAGE"] == "drishti/stream:1.0.0"


def test_images_tag_and_digest(helm_bin) -> None:
    digest = "sha256:" + "b" * 64
    deployment = one(template(helm_bin, {
        "operator": {"image": {"repository": "reg.example/op", "tag": "dev", "pullPolicy": "Never"}},
        "camera": {"image": {"repository": "reg.example/cam", "tag": "dev", "digest": digest}},
    }), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["imagePullPolicy"]) == ("reg.example/op:dev", "Never")
    assert container_env(deployment)["DRISHTI_OPERATOR_CAMERA_IMAGE"] == f"reg.example/cam@{digest}"


def test_cluster_scope_serves_every_namespace(helm_bin) -> None:
    objects = template(helm_bin, {"rbac": {"scope": "cluster"}})
    env = container_env(one(objects, "Deployment"))
    assert "DRISHTI_OPERATOR_NAMESPACES" not in env
    assert not find(objects, "Role") and not find(objects, "RoleBinding")
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "demo-drishti-operator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-drishti-operator",
                                    "namespace": "cams"}]
    # as the container starts it: with the chart's environment only
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("DRISHTI_OPERATOR_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        args = parse_args([])
    assert args.all_namespaces and not args.namespaces


def test_namespaced_scope_binds_each_served_namespace(helm_bin, monkeypatch) -> None:
    objects = template(helm_bin, {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["site-a", "site-b"]})
    env = container_env(one(objects, "Deployment"))
    assert env["DRISHTI_OPERATOR_NAMESPACES"] == "site-a,site-b"
    assert sorted(role["metadata"]["namespace"] for role in find(objects, "Role")) == ["site-a", "site-b"]
    for binding in find(objects, "RoleBinding"):
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "demo-drishti-operator",
                                        "namespace": "cams"}]
    # one ClusterRole, only for what no Role can grant, named per release namespace
    (cluster_role,) = find(objects, "ClusterRole")
    assert cluster_role["metadata"]["name"] == "demo-drishti-operator-cams"
    assert all(verb in ("list", "watch") for rule in cluster_role["rules"] for verb in rule["verbs"])
    monkeypatch.setenv("DRISHTI_OPERATOR_NAMESPACES", env["DRISHTI_OPERATOR_NAMESPACES"])
    args = parse_args([])
    assert (args.all_namespaces, args.namespaces) == (False, ["site-a", "site-b"])


def test_namespaced_scope_defaults_to_the_release_namespace(helm_bin) -> None:
    objects = template(helm_bin, {"rbac": {"scope": "namespaced"}})
    assert container_env(one(objects, "Deployment"))["DRISHTI_OPERATOR_NAMESPACES"] == "cams"
    assert one(objects, "Role")["metadata"]["namespace"] == "cams"


def test_rbac_and_service_account_can_be_external(helm_bin) -> None:
    objects = template(helm_bin, {"rbac": {"create": False},
                                  "serviceAccount": {"create": False, "name": "platform-operator"}})
    assert not find(objects, "ServiceAccount") and not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operator"
    assert "serviceAccount.name is required" in refused(helm_bin, {"serviceAccount": {"create": False}})


def test_cameras_render_as_virtual_cameras(helm_bin) -> None:
    cameras = {cam["metadata"]["name"]: cam for cam in find(template(helm_bin, CAMERAS), "VirtualCamera")}
    assert sorted(cameras) == ["gate", "lobby", "spare"]
    lobby, gate = cameras["lobby"], cameras["gate"]
    assert lobby["apiVersion"] == "drishti.io/v1alpha1"
    assert lobby["metadata"]["namespace"] == "cams"
    assert lobby["spec"] == {"source": "synthetic", "fps": 15}
    assert gate["metadata"]["namespace"] == "site-b"
    assert gate["metadata"]["labels"]["site"] == "b"
    assert gate["metadata"]["labels"]["app.kubernetes.io/component"] == "camera"
    assert gate["spec"]["volume"] == {"claimName": "videos"}


def test_no_cameras_by_default(helm_bin) -> None:
    assert not find(template(helm_bin), "VirtualCamera")


def test_a_camera_outside_the_served_namespaces_is_refused(helm_bin) -> None:
    error = refused(helm_bin, {"rbac": {"scope": "namespaced"}, **CAMERAS})
    assert "camera gate is in namespace site-b, which the operator does not serve" in error


def test_a_camera_listed_twice_is_refused(helm_bin) -> None:
    cam = {"name": "lobby", "spec": {"source": "synthetic"}}
    assert "cameras: cams/lobby is listed twice" in refused(helm_bin, {"cameras": [cam, cam]})


def test_helm_test_job_checks_operator_and_cameras(helm_bin) -> None:
    objects = template(helm_bin, CAMERAS, "--show-only", "templates/tests/test-stream.yaml")
    job = one(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == "drishti/stream:1.0.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    script = container["args"][0]
    assert "http://demo-drishti-operator.cams.svc:8080/healthz" in script
    assert 'drishti-stream probe --seconds 5 "ws://lobby.cams.svc:8000/ws/stream"' in script
    assert 'drishti-stream probe --seconds 5 "ws://gate.site-b.svc:9000/ws/stream"' in script
    assert "spare" not in script  # scaled to zero: nothing to probe


def notes(helm_bin, values: dict) -> str:
    path = values_file(values)
    try:
        result = run([helm_bin, "install", "demo", CHART, "--namespace", "cams", "--dry-run=client",
                      "-f", path])
    finally:
        path.unlink()
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_tell_how_to_reach_the_cameras(helm_bin) -> None:
    text = notes(helm_bin, CAMERAS)
    assert "kubectl get vcam -A" in text
    assert "ws://lobby.cams.svc:8000/ws/stream" in text
    assert "ws://gate.site-b.svc:9000/ws/stream" in text
    assert "drishti-stream probe ws://lobby.cams.svc:8000/ws/stream --seconds 5" in text
    assert "kubectl -n cams port-forward svc/lobby 8000:8000" in text
    assert "helm test demo -n cams" in text


def test_notes_without_cameras_show_how_to_make_one(helm_bin) -> None:
    text = notes(helm_bin, {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["site-a"]})
    assert "in: site-a." in text
    assert "kubectl -n site-a apply -f -" in text
    # the camera in the NOTES is a valid one
    manifest = text.split("<<'EOF'\n", 1)[1].split("   EOF", 1)[0]
    camera = yaml.safe_load("\n".join(line[3:] for line in manifest.splitlines()))
    assert camera == {"apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera",
                      "metadata": {"name": "lobby"}, "spec": {"source": "synthetic", "fps": 15}}


@pytest.mark.parametrize("values,message", [
    ({"rbac": {"scope": "everywhere"}}, "at '/rbac/scope': value must be one of 'cluster', 'namespaced'"),
    ({"operator": {"logFormat": "xml"}},
     "at '/operator/logFormat': value must be one of 'json', 'plain', 'full'"),
    ({"operator": {"imag": {}}}, "at '/operator': additional properties 'imag' not allowed"),
    ({"cameras": [{"name": "Lobby", "spec": {"source": "synthetic"}}]},
     "at '/cameras/0/name': 'Lobby' does not match pattern"),
    ({"cameras": [{"name": "lobby"}]}, "at '/cameras/0': missing property 'spec'"),
    ({"cameras": [{"name": "lobby", "spec": {"fps": 15}}]},
     "at '/cameras/0/spec': missing property 'source'"),
    ({"cameras": [{"name": "lobby", "spec": {"source": "synthetic", "fps": 500}}]},
     "at '/cameras/0/spec/fps': maximum: got 500, want 120"),
    ({"cameras": [{"name": "lobby", "spec": {"source": "synthetic", "jpegQuallity": 80}}]},
     "at '/cameras/0/spec': additional properties 'jpegQuallity' not allowed"),
    ({"cameras": [{"name": "lobby", "spec": {"source": "synthetic", "loop": "yes"}}]},
     "at '/cameras/0/spec/loop': got string, want boolean"),
    ({"watchNamespaces": ["Site_A"]}, "at '/watchNamespaces/0': 'Site_A' does not match pattern"),
])
def test_values_schema_refuses(helm_bin, values: dict, message: str) -> None:
    """Each bad value is refused by values.schema.json, and the error names the exact place and rule."""
    error = refused(helm_bin, values)
    assert "values don't meet the specifications of the schema" in error, error
    assert message in error, error


def test_values_schema_accepts_every_camera_field(helm_bin) -> None:
    camera = {"name": "full", "spec": {
        "source": "gs://bucket/video.mp4", "fps": 30, "loop": False, "jpegQuality": 70, "maxWidth": 1280,
        "maxHeight": 720, "epoch": 1700000000, "port": 8080, "sendTimeout": 2.5, "maxClients": 10,
        "cacheBudgetMb": 128, "logLevel": "debug", "replicas": 2, "image": "reg.example/cam:1",
        "imagePullPolicy": "Always", "resources": {"requests": {"cpu": "500m", "memory": 512}, "limits": {}},
        "gcsCredentials": {"secretName": "gcs", "key": "key.json"},
    }}
    result = template(helm_bin, {"cameras": [camera]}, check=False)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load_all(result.stdout)
    assert any(doc and doc["kind"] == "VirtualCamera" for doc in rendered)


def test_lint_catches_a_broken_template(helm_bin, tmp_path) -> None:
    """The lint test above would fail on a broken chart: lint a copy with a broken template."""
    import shutil

    copy = tmp_path / "drishti"
    shutil.copytree(CHART, copy)
    (copy / "templates" / "broken.yaml").write_text("{{ .Values.nope.deeper }}\n")
    result = run([helm_bin, "lint", copy, "--strict"], check=False)
    assert result.returncode != 0
    assert "nope" in result.stdout + result.stderr


def _leaves(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix.rstrip(".")]


def test_readme_documents_every_value() -> None:
    """Each value of values.yaml (or an object holding it) has a row in the chart's README."""
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"`([a-zA-Z][\w.]*)`", readme))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = [leaf for leaf in _leaves(values)
               if not any(".".join(leaf.split(".")[:n]) in documented for n in range(1, leaf.count(".") + 2))]
    assert not missing, f"not in charts/drishti/README.md: {missing}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(values) | {"global"} == set(schema["properties"])
