"""The API server itself: version, CRDs validated by OpenAPI schema and CEL, RBAC on, and the CLI tools."""

from __future__ import annotations

import json
import secrets
import subprocess

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.cluster import build, testing
from hack.cluster.controlplane import NODE_NAME
from hack.cluster.testing import wait_until
from tests.ports import free_port

pytestmark = pytest.mark.cluster

CEL_MESSAGE = "minReplicas must not exceed maxReplicas"


def test_version_is_the_pinned_release(k8s_api_client, k8s_cluster):
    info = client.VersionApi(k8s_api_client).get_code()
    assert (info.major, info.minor.rstrip("+")) == ("1", "35")
    if k8s_cluster.local_only(f"the API server is the pinned {build.KUBERNETES_VERSION}"):
        assert info.git_version == build.KUBERNETES_VERSION


@pytest.fixture
def crd(k8s_api_client):
    """A namespaced CRD in a group unique to this test, with a schema range and a CEL rule; removed after."""
    ext = client.ApiextensionsV1Api(k8s_api_client)
    group = f"h{secrets.token_hex(4)}.harness.drishti.io"
    schema = {
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "required": ["fps"],
            "properties": {
                "fps": {"type": "integer", "minimum": 1, "maximum": 120},
                "minReplicas": {"type": "integer", "minimum": 0},
                "maxReplicas": {"type": "integer", "minimum": 0},
            },
            "x-kubernetes-validations": [{
                "rule": ("!has(self.minReplicas) || !has(self.maxReplicas) "
                         "|| self.minReplicas <= self.maxReplicas"),
                "message": CEL_MESSAGE,
            }],
        }},
    }
    body = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }
    ext.create_custom_resource_definition(body)
    try:
        def established():
            conds = ext.read_custom_resource_definition(f"gadgets.{group}").status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conds)

        wait_until(established, timeout=30, what="CRD Established")
        yield group
    finally:
        ext.delete_custom_resource_definition(f"gadgets.{group}")


def test_crd_is_established_and_the_api_server_enforces_schema_and_cel(k8s_api_client, k8s_namespace, crd):
    objs = client.CustomObjectsApi(k8s_api_client)

    def create(name: str, spec: dict):
        body = {"apiVersion": f"{crd}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}
        return objs.create_namespaced_custom_object(crd, "v1", k8s_namespace, "gadgets", body)

    def create_good():  # the first request can race the new API's discovery: retry briefly on 404
        try:
            return create("good", {"fps": 30, "minReplicas": 1, "maxReplicas": 2})
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    good = wait_until(create_good, timeout=15, what="the custom resource API to serve")
    assert good["spec"]["fps"] == 30

    with pytest.raises(ApiException) as cel:
        create("bad-cel", {"fps": 30, "minReplicas": 3, "maxReplicas": 2})
    assert cel.value.status == 422
    assert CEL_MESSAGE in json.loads(cel.value.body)["message"]

    with pytest.raises(ApiException) as rng:
        create("bad-fps", {"fps": 500})
    assert rng.value.status == 422
    assert "spec.fps" in rng.value.body and "less than or equal to 120" in rng.value.body

    names = [o["metadata"]["name"] for o in
             objs.list_namespaced_custom_object(crd, "v1", k8s_namespace, "gadgets")["items"]]
    assert names == ["good"]


def test_rbac_is_enforced_for_service_accounts(k8s_api_client, k8s_namespace):
    """A service account with no role bindings is denied: RBAC is on, not AlwaysAllow."""
    review = client.AuthorizationV1Api(k8s_api_client).create_subject_access_review(
        client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{k8s_namespace}:default",
            resource_attributes=client.V1ResourceAttributes(
                namespace=k8s_namespace, verb="list", resource="secrets"))))
    assert review.status.allowed is False


def test_kubectl_and_helm_talk_to_the_cluster(kubectl_bin, helm_bin, k8s_env, k8s_namespace, k8s_cluster):
    out = subprocess.run([str(kubectl_bin), "get", "nodes", "-o", "json"], env=k8s_env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    nodes = {n["metadata"]["name"]: n for n in json.loads(out)["items"]}
    if k8s_cluster.local_only(f"the one node is the harness's {NODE_NAME}, Ready"):
        assert list(nodes) == [NODE_NAME]
        ready = {c["type"]: c["status"] for c in nodes[NODE_NAME]["status"]["conditions"]}
        assert ready["Ready"] == "True"
    client_version = subprocess.run([str(kubectl_bin), "version", "--client", "-o", "json"], check=True,
                                    capture_output=True, text=True, timeout=60).stdout
    assert json.loads(client_version)["clientVersion"]["minor"].rstrip("+") == "35"

    helm = subprocess.run([str(helm_bin), "version", "--short"], check=True, capture_output=True, text=True,
                          timeout=60).stdout
    assert helm.startswith("v4."), helm
    listing = subprocess.run([str(helm_bin), "list", "-n", k8s_namespace, "-o", "json"], env=k8s_env,
                             check=True, capture_output=True, text=True, timeout=60).stdout
    assert json.loads(listing) == []


def test_a_reachable_kubeconfig_is_not_used_unless_named_for_the_tests(kubeconfig, monkeypatch, tmp_path):
    """A shell whose $KUBECONFIG names a live cluster (here: this session's own) must not send the tests
    there; only DRISHTI_TEST_KUBECONFIG does, and a named cluster that does not answer fails loudly."""
    monkeypatch.delenv(testing.TEST_KUBECONFIG_ENV, raising=False)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    testing.reachable_kubeconfig.cache_clear()
    try:
        assert testing.reachable_kubeconfig() is None
        monkeypatch.setenv(testing.TEST_KUBECONFIG_ENV, kubeconfig)
        testing.reachable_kubeconfig.cache_clear()
        assert testing.reachable_kubeconfig() == kubeconfig
        dead = tmp_path / "dead.kubeconfig"
        dead.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "dead",
            "clusters": [{"name": "dead", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
            "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
            "users": [{"name": "dead", "user": {"token": "x"}}],
        }))
        monkeypatch.setenv(testing.TEST_KUBECONFIG_ENV, str(dead))
        testing.reachable_kubeconfig.cache_clear()
        with pytest.raises(RuntimeError, match="DRISHTI_TEST_KUBECONFIG=.*does not answer"):
            testing.reachable_kubeconfig()
    finally:
        testing.reachable_kubeconfig.cache_clear()
