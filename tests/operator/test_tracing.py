"""Spans of real reconciles: the operator runs in-process (Kopf's KopfRunner) with an in-memory exporter."""

from __future__ import annotations

import pytest
from kopf.testing import KopfRunner

from tests.operator.conftest import Cameras, OperatorProcess
from tests.operator.spans import memory_exporter

pytestmark = pytest.mark.cluster


def test_reconciles_and_their_api_calls_are_traced(cams: Cameras, operator_process: OperatorProcess,
                                                   kubeconfig: str, monkeypatch: pytest.MonkeyPatch) -> None:
    operator_process.stop()  # one operator at a time; the next test that needs it starts it again
    exporter = memory_exporter()
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.setenv("DRISHTI_OPERATOR_STATUS_DELAY", "0.1")
    args = ["run", "--standalone", "--namespace", cams.namespace, "-m", "drishti_operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        cams.create("traced", fps=5)
        cams.wait_ready("traced", generation=1)
        cams.patch("traced", {"spec": {"fps": 6}})
        cams.wait_ready("traced", generation=2)
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None

    spans = [s for s in exporter.get_finished_spans()
             if s.attributes.get("k8s.namespace.name") == cams.namespace]
    reconciles = {s.attributes["drishti.action"]: s for s in spans if s.name.startswith("reconcile ")}
    create, update = reconciles["create"], reconciles["update"]
    for span, generation, outcome in ((create, 1, "created"), (update, 2, "updated")):
        assert span.attributes["drishti.camera"] == "traced"
        assert span.attributes["drishti.generation"] == generation
        assert span.attributes["drishti.outcome"] == outcome
        assert span.attributes["drishti.duration_s"] > 0
        children = {s.name for s in spans
                    if s.parent is not None and s.parent.span_id == span.context.span_id}
        assert {"apply Service", "apply Deployment"} <= children, children
    written = [s for s in spans
               if s.name == "reconcile status" and s.attributes["drishti.outcome"] == "written"]
    assert {s.attributes["drishti.generation"] for s in written} == {1, 2}
    for span in written:
        children = [s.name for s in spans
                    if s.parent is not None and s.parent.span_id == span.context.span_id]
        assert children == ["patch VirtualCamera/status"]
    api_calls = [s for s in spans if s.name == "apply Deployment"]
    assert all(s.attributes["k8s.resource.name"] == "traced" for s in api_calls)
    assert all(s.attributes["http.response.status_code"] == 200 for s in api_calls)
