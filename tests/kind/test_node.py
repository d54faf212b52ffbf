"""The node is real: kubelet v1.35 on containerd runs it, CoreDNS answers, and a pod resolves a Service
name."""

from __future__ import annotations

import json

import pytest

from hack.cluster import build
from tests.kind.pods import run_pod

pytestmark = pytest.mark.timeout(900)  # the first test also creates the cluster

RESOLVE = "import socket; print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))"


def test_node_is_ready_with_a_real_kubelet(kind_cluster, kubectl) -> None:
    (node,) = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == build.KUBERNETES_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True", node["status"]["conditions"]
    # no fake: kwok's nodes carry its annotation and no kubelet endpoint
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250


def test_coredns_answers_and_a_pod_resolves_a_service(kind_cluster, kubectl) -> None:
    coredns = json.loads(kubectl("-n", "kube-system", "get", "deployment", "coredns", "-o", "json").stdout)
    assert coredns["status"].get("readyReplicas", 0) >= 1, coredns["status"]
    cluster_ip = kubectl("get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout
    result = run_pod(kubectl, "default", "resolve", "drishti/stream:dev", ["python3", "-c", RESOLVE])
    assert (result.exit_code, result.log.strip()) == (0, cluster_ip), result
