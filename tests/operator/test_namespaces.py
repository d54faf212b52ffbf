"""`DRISHTI_OPERATOR_NAMESPACES`: an operator that serves only the listed namespaces leaves the others
alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hack.cluster import testing
from tests.operator.conftest import Cameras, OperatorProcess

pytestmark = pytest.mark.cluster


@pytest.fixture
def other_namespace(k8s_api_client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = testing.create_namespace(k8s_api_client, request.node.name + "-other")
    try:
        yield name
    finally:
        testing.delete_namespace(k8s_api_client, name)


def test_listed_namespaces_only(cams: Cameras, other_namespace: str, operator_process: OperatorProcess,
                                operator_kubeconfig: Path, tmp_path: Path, k8s_api_client) -> None:
    operator_process.stop()  # one operator at a time; the next test that needs it starts it again
    scoped = OperatorProcess(operator_kubeconfig, tmp_path / "operator.log", args=(),
                             env={"DRISHTI_OPERATOR_NAMESPACES": cams.namespace})
    scoped.start()
    try:
        elsewhere = Cameras(k8s_api_client, other_namespace)
        elsewhere.create("ignored")
        cams.create("served")
        # `served` was created after `ignored` and is Ready: an operator that watched the other namespace
        # would have made ignored's Deployment by now (it takes a fraction of the time to Ready)
        cams.wait_ready("served")
        assert elsewhere.deployment("ignored") is None
        assert "status" not in (elsewhere.get("ignored") or {})
    finally:
        scoped.stop()
