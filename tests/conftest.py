"""Cluster fixtures: a real Kubernetes control plane, started lazily, once per session.

Only tests that request one of the cluster fixtures pay for it; they are marked ``cluster`` automatically
(``-m "not cluster"`` skips them). ``$KUBECONFIG`` is never used: only a cluster named by
``DRISHTI_TEST_KUBECONFIG`` replaces the local one. See hack/cluster/README.md.

    k8s_cluster      session   hack.cluster.testing.Cluster (kubeconfig, control_plane or None)
    kubeconfig       session   str: path of an admin kubeconfig
    k8s_api_client   session   kubernetes.client.ApiClient for that kubeconfig
    k8s_namespace    function  str: a fresh namespace (its default service account exists), deleted afterwards
    k8s_env          session   dict: os.environ plus KUBECONFIG, for running kubectl/helm/the operator
    kubectl_bin      session   pathlib.Path of kubectl 1.35 (no cluster needed)
    helm_bin         session   pathlib.Path of helm 4 (no cluster needed)
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hack.cluster import build, testing
from tests import leftovers

CLUSTER_FIXTURES = {"k8s_cluster", "kubeconfig", "k8s_api_client", "k8s_namespace", "k8s_env"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the control plane before the first test (a cold build must not count against a test's
    timeout)."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("cluster") for item in session.items):
        return
    if not testing.needs_build():
        return
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n[cluster] selected tests need a Kubernetes control plane and its binaries are not built yet:"
              "\n[cluster] building them now (once per machine; see hack/cluster/README.md)", flush=True)
        build.ensure_built()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fails the session (an error at the last teardown) when it left a container, an untagged image of the
    project, a listening port or a process behind, naming each (tests/leftovers.py). Set up before every other
    session fixture, so it checks after all of them are torn down."""
    baseline = leftovers.Baseline.take()
    yield
    if leftovers.kept_on_purpose():
        return
    found = baseline.leftovers()
    assert not found, "the test session left behind:\n  " + "\n  ".join(found)


@pytest.fixture(scope="session")
def k8s_cluster(request: pytest.FixtureRequest) -> Iterator[testing.Cluster]:
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        cluster = testing.Cluster.acquire()
    try:
        yield cluster
    finally:
        cluster.release()


@pytest.fixture(scope="session")
def kubeconfig(k8s_cluster: testing.Cluster) -> str:
    return k8s_cluster.kubeconfig


@pytest.fixture(scope="session")
def k8s_api_client(k8s_cluster: testing.Cluster):
    return k8s_cluster.api_client()


@pytest.fixture
def k8s_namespace(k8s_api_client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = testing.create_namespace(k8s_api_client, request.node.name)
    try:
        yield name
    finally:
        testing.delete_namespace(k8s_api_client, name)


@pytest.fixture(scope="session")
def k8s_env(kubeconfig: str) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": kubeconfig}


@pytest.fixture(scope="session")
def kubectl_bin():
    return testing.tool("kubectl")


@pytest.fixture(scope="session")
def helm_bin():
    return testing.tool("helm")
