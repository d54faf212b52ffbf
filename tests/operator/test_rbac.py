"""The operator's RBAC is least privilege: what it needs, and nothing that deletes or reads secrets.

The running operator authenticates with its ServiceAccount (see conftest), so the other operator tests prove
that these rules are enough; here the API server's authorizer answers what the account may not do.
"""

from __future__ import annotations

import pytest
from kubernetes import client

pytestmark = pytest.mark.cluster

ACCOUNT = "system:serviceaccount:drishti-system:drishti-operator"
GROUPS = ["system:serviceaccounts", "system:serviceaccounts:drishti-system", "system:authenticated"]


def allowed(api: client.ApiClient, verb: str, resource: str, namespace: str = "any-namespace") -> bool:
    """Asks the authorizer (SubjectAccessReview) whether the operator's account may `verb` `resource`."""
    name, _, subresource = resource.partition("/")
    plural, _, group = name.partition(".")
    review = client.AuthorizationV1Api(api).create_subject_access_review({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": ACCOUNT, "groups": GROUPS, "resourceAttributes": {
            "verb": verb, "group": group, "resource": plural, "subresource": subresource,
            "namespace": namespace,
        }},
    })
    return bool(review.status.allowed)


@pytest.mark.parametrize("verb,resource", [
    ("watch", "virtualcameras.drishti.io"),
    ("patch", "virtualcameras.drishti.io"),
    ("patch", "virtualcameras.drishti.io/status"),
    ("update", "virtualcameras.drishti.io/finalizers"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps"),
    ("watch", "deployments.apps"),
    ("create", "services"),
    ("patch", "services"),
    ("watch", "pods"),
    ("create", "events"),
])
def test_allowed(k8s_api_client, operator_kubeconfig, verb: str, resource: str) -> None:
    assert allowed(k8s_api_client, verb, resource)


@pytest.mark.parametrize("verb,resource", [
    ("delete", "deployments.apps"),
    ("delete", "services"),
    ("delete", "virtualcameras.drishti.io"),
    ("create", "virtualcameras.drishti.io"),
    ("update", "virtualcameras.drishti.io"),
    ("update", "deployments.apps"),
    ("patch", "deployments.apps/scale"),
    ("get", "secrets"),
    ("list", "configmaps"),
    ("create", "pods"),
    ("delete", "pods"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
])
def test_denied(k8s_api_client, operator_kubeconfig, verb: str, resource: str) -> None:
    assert not allowed(k8s_api_client, verb, resource)
