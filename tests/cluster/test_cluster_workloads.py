"""The control plane runs workloads: scheduling, fake-node readiness, Services, garbage collection."""

from __future__ import annotations

import ipaddress

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from hack.cluster.controlplane import KWOK_NODE_ANNOTATION, POD_CIDR, SERVICE_CIDR
from hack.cluster.testing import wait_until

pytestmark = pytest.mark.cluster

IMAGE = "registry.k8s.io/pause:3.10"


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app.kubernetes.io/name": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="main", image=IMAGE,
                    ports=[client.V1ContainerPort(container_port=8000, name="http")],
                )]),
            ),
        ),
    )


def available(apps: client.AppsV1Api, ns: str, name: str, replicas: int):
    d = apps.read_namespaced_deployment_status(name, ns)
    conds = {c.type: c.status for c in d.status.conditions or []}
    return d if conds.get("Available") == "True" and (d.status.ready_replicas or 0) == replicas else None


def pods_of(core: client.CoreV1Api, ns: str, name: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/name={name}").items


def test_deployment_becomes_available_with_pods_running_on_the_fake_node(k8s_api_client, k8s_namespace,
                                                                         k8s_cluster):
    apps, core = client.AppsV1Api(k8s_api_client), client.CoreV1Api(k8s_api_client)
    apps.create_namespaced_deployment(k8s_namespace, deployment("web", 2))

    wait_until(lambda: available(apps, k8s_namespace, "web", 2), timeout=60, what="Deployment web Available")

    pods = pods_of(core, k8s_namespace, "web")
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        ready = {c.type: c.status for c in pod.status.conditions}
        assert ready["PodScheduled"] == "True" and ready["Ready"] == "True"
        assert pod.spec.node_name, "the scheduler bound the pod to a node"
        assert pod.status.pod_ip
        if k8s_cluster.local_only("the pods run on kwok's node, with addresses in the pod CIDR"):
            node = core.read_node(pod.spec.node_name)
            assert node.metadata.annotations.get(KWOK_NODE_ANNOTATION) == "fake"
            assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(POD_CIDR, strict=False)


def test_service_gets_a_cluster_ip_and_endpoints_of_ready_pods(k8s_api_client, k8s_namespace, k8s_cluster):
    apps, core = client.AppsV1Api(k8s_api_client), client.CoreV1Api(k8s_api_client)
    discovery = client.DiscoveryV1Api(k8s_api_client)
    apps.create_namespaced_deployment(k8s_namespace, deployment("cam", 2))
    svc = core.create_namespaced_service(k8s_namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="cam"),
        spec=client.V1ServiceSpec(selector={"app.kubernetes.io/name": "cam"},
                                  ports=[client.V1ServicePort(name="http", port=80, target_port="http")]),
    ))

    assert svc.spec.cluster_ip and svc.spec.cluster_ip != "None"
    if k8s_cluster.local_only("the Service's cluster IP is in the harness's service CIDR"):
        assert ipaddress.ip_address(svc.spec.cluster_ip) in ipaddress.ip_network(SERVICE_CIDR)
    wait_until(lambda: available(apps, k8s_namespace, "cam", 2), timeout=60, what="Deployment cam Available")
    pod_ips = sorted(p.status.pod_ip for p in pods_of(core, k8s_namespace, "cam"))

    def slice_ips():
        slices = discovery.list_namespaced_endpoint_slice(
            k8s_namespace, label_selector="kubernetes.io/service-name=cam").items
        ips = sorted(a for s in slices for e in s.endpoints or [] if e.conditions.ready for a in e.addresses)
        return ips if ips == pod_ips else None

    wait_until(slice_ips, timeout=30, what="an EndpointSlice with both pod IPs, ready")
    (eps,) = discovery.list_namespaced_endpoint_slice(
        k8s_namespace, label_selector="kubernetes.io/service-name=cam").items
    assert [(p.name, p.port) for p in eps.ports] == [("http", 8000)], "targetPort resolved by name"

    # The (deprecated) v1 Endpoints object is still maintained by the endpoints controller.
    def endpoint_ips():
        try:
            ep = core.read_namespaced_endpoints("cam", k8s_namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        ips = sorted(a.ip for s in ep.subsets or [] for a in s.addresses or [])
        return ips if ips == pod_ips else None

    wait_until(endpoint_ips, timeout=30, what="v1 Endpoints with both pod IPs")


def test_deleting_an_owner_garbage_collects_its_dependents(k8s_api_client, k8s_namespace):
    core, apps = client.CoreV1Api(k8s_api_client), client.AppsV1Api(k8s_api_client)
    owner = core.create_namespaced_config_map(
        k8s_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"a": "1"}))
    ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
    core.create_namespaced_secret(k8s_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="dependent", owner_references=[ref]), string_data={"k": "v"}))
    core.create_namespaced_secret(k8s_namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="bystander"), string_data={"k": "v"}))
    apps.create_namespaced_deployment(k8s_namespace, deployment("gc", 1))
    wait_until(lambda: available(apps, k8s_namespace, "gc", 1), timeout=60, what="Deployment gc Available")

    core.delete_namespaced_config_map("owner", k8s_namespace, propagation_policy="Background")
    apps.delete_namespaced_deployment("gc", k8s_namespace, propagation_policy="Background")

    def secret_names():
        return {s.metadata.name for s in core.list_namespaced_secret(k8s_namespace).items}

    wait_until(lambda: "dependent" not in secret_names(), timeout=30, what="dependent Secret collected")
    assert "bystander" in secret_names(), "objects without the owner reference stay"
    wait_until(lambda: not apps.list_namespaced_replica_set(k8s_namespace).items, timeout=30,
               what="the Deployment's ReplicaSet collected")
    wait_until(lambda: not pods_of(core, k8s_namespace, "gc"), timeout=60, what="the Deployment's pods gone")
