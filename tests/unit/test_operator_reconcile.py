"""The cluster-free parts of the operator: camera snapshots, drift, children's labels, Kopf settings."""

from __future__ import annotations

import kopf
from drishti_operator import drift, indices, kopf_setup
from drishti_operator.render import MANAGED_SELECTOR, child_labels, render_service


def camera() -> dict:
    return {
        "apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera",
        "metadata": {"name": "cam", "namespace": "ns", "uid": "u1", "generation": 2, "resourceVersion": "9",
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"site": "a"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"source": "synthetic", "port": 8000},
        "status": {"phase": "Ready"},
    }


def test_compact_keeps_what_the_reconcile_needs() -> None:
    snapshot = indices.compact(camera())
    assert snapshot["metadata"] == {"name": "cam", "namespace": "ns", "uid": "u1", "generation": 2,
                                    "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"site": "a"}}
    assert snapshot["spec"] == {"source": "synthetic", "port": 8000}
    assert snapshot["status"] == {"phase": "Ready"}


def test_subset_detects_edits_but_not_server_defaults() -> None:
    desired = render_service(camera())
    live = {"spec": {**desired["spec"], "clusterIP": "10.0.0.7", "sessionAffinity": "None",
                     "ports": [{**desired["spec"]["ports"][0], "appProtocol": None}]}}
    assert drift._subset(desired["spec"], live["spec"])
    live["spec"]["ports"][0]["port"] = 9999
    assert not drift._subset(desired["spec"], live["spec"])
    live["spec"]["ports"] = []
    assert not drift._subset(desired["spec"], live["spec"])


def test_children_labels_are_the_standard_ones_over_the_cameras() -> None:
    body = camera()
    body["metadata"]["labels"]["app.kubernetes.io/instance"] = "helm-release"
    labels = child_labels(body)
    assert labels["site"] == "a" and labels["app.kubernetes.io/instance"] == "cam"


def test_kopf_settings() -> None:
    settings = kopf.OperatorSettings()
    kopf_setup.configure_kopf(settings)
    assert settings.posting.level >= 30
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, kopf_setup.MemoryDiffBaseStorage)
    assert list(settings.watching.label_selectors.values()) == [MANAGED_SELECTOR] * 3


def test_resource_versions_compare_numerically() -> None:
    assert drift._newer("100", "99") and not drift._newer("99", "100") and not drift._newer("5", "5")


def test_child_event_noise_is_filtered() -> None:
    import logging

    quiet = kopf_setup.QuietChildEvents()

    def record(level: int, message: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)

    assert not quiet.filter(record(logging.INFO, "Handler 'pod_event' succeeded."))
    assert quiet.filter(record(logging.INFO, "Handler 'reconcile' succeeded."))
    assert quiet.filter(record(logging.ERROR, "Handler 'pod_event' succeeded."))
