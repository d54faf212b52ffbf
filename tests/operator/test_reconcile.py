"""The operator on a real control plane: children, status, rollouts, drift repair, deletion, restart."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime

import pytest
from drishti_operator.render import HASH_ANNOTATION

from hack.cluster.testing import wait_until
from tests.operator.conftest import Cameras, OperatorProcess, env_of

pytestmark = pytest.mark.cluster

REPAIR_WITHIN = 10.0  # seconds: the promise for drift repair


def pod_hash(deployment: dict) -> str:
    return deployment["spec"]["template"]["metadata"]["annotations"][HASH_ANNOTATION]


def test_create_makes_an_owned_deployment_and_service_and_becomes_ready(cams: Cameras,
                                                                         operator: OperatorProcess) -> None:
    created = cams.create("gate-1", fps=15, jpegQuality=70)
    uid = created["metadata"]["uid"]
    camera = cams.wait_ready("gate-1")

    deployment, service = cams.deployment("gate-1"), cams.service("gate-1")
    assert deployment and service
    for child in (deployment, service):
        refs = child["metadata"]["ownerReferences"]
        assert [(r["kind"], r["name"], r["uid"], r["controller"]) for r in refs] == \
            [("VirtualCamera", "gate-1", uid, True)]
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "gate-1"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "drishti-operator"
    env = env_of(deployment)
    assert env["DRISHTI_FPS"] == "15" and env["DRISHTI_JPEG_QUALITY"] == "70"
    assert env["DRISHTI_VIDEO_PATH"] == "synthetic" and env["DRISHTI_NAME"] == "gate-1"
    created_at = datetime.fromisoformat(created["metadata"]["creationTimestamp"]).timestamp()
    assert env["DRISHTI_EPOCH"] == str(int(created_at))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "drishti/stream:dev"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert service["spec"]["ports"][0]["port"] == 8000

    status = camera["status"]
    assert status["observedGeneration"] == camera["metadata"]["generation"]
    assert status["url"] == f"ws://gate-1.{cams.namespace}.svc:8000/ws/stream"
    assert status["serviceName"] == "gate-1" and status["readyReplicas"] == 1
    assert status["epoch"] == int(created_at)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert conditions["Progressing"]["status"] == "False" and conditions["Degraded"]["status"] == "False"
    for condition in conditions.values():
        assert condition["reason"] and condition["message"] and condition["lastTransitionTime"]


def test_printer_columns(cams: Cameras, operator: OperatorProcess, kubectl_bin, k8s_env) -> None:
    cams.create("cols", fps=10)
    cams.wait_ready("cols")
    out = subprocess.run([str(kubectl_bin), "get", "vcam", "-n", cams.namespace], env=k8s_env,
                         capture_output=True, text=True, check=True, timeout=30).stdout
    header, row = out.splitlines()[:2]
    assert header.split() == ["NAME", "SOURCE", "FPS", "READY", "URL", "AGE"]
    assert row.split()[:5] == ["cols", "synthetic", "10", "True", f"ws://cols.{cams.namespace}.svc:8000/ws/stream"]


def test_fps_update_rolls_once_and_status_follows(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("cam", fps=10)
    cams.wait_ready("cam", generation=1)
    before = cams.deployment("cam")
    assert len(cams.replica_sets("cam")) == 1

    cams.patch("cam", {"spec": {"fps": 25}})
    camera = cams.wait_ready("cam", generation=2)
    after = cams.deployment("cam")
    assert env_of(after)["DRISHTI_FPS"] == "25"
    assert env_of(after)["DRISHTI_EPOCH"] == env_of(before)["DRISHTI_EPOCH"], "frame ids survive the rollout"
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1, "exactly one new template"
    assert pod_hash(after) != pod_hash(before)
    assert len(cams.replica_sets("cam")) == 2
    assert camera["status"]["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in camera["status"]["conditions"])


def test_changes_that_do_not_touch_the_pod_roll_nothing(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("still", fps=10)
    cams.wait_ready("still", generation=1)
    before = cams.deployment("still")
    replica_sets = cams.replica_sets("still")

    # Same values written again (a new generation? no: the API server sees no change), then a label.
    cams.patch("still", {"spec": {"fps": 10, "loop": True}})
    cams.patch("still", {"metadata": {"labels": {"site": "north"}}})
    wait_until(lambda: (cams.deployment("still") or {}).get("metadata", {}).get("labels", {}).get("site"),
               timeout=REPAIR_WITHIN, what="the camera's label on its Deployment")
    # The label arrived with the operator's apply after both patches: a pod change would have come in that
    # same apply (the whole rendered Deployment at once), so the Deployment now shows whether the pod was
    # rolled.
    after = cams.deployment("still")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert pod_hash(after) == pod_hash(before)
    assert cams.replica_sets("still") == replica_sets

    # Scaling changes the Deployment, not its pod template.
    cams.patch("still", {"spec": {"replicas": 2}})
    wait_until(lambda: (cams.get("still") or {}).get("status", {}).get("readyReplicas") == 2, timeout=60,
               what="2 ready replicas")
    assert cams.replica_sets("still") == replica_sets
    assert pod_hash(cams.deployment("still")) == pod_hash(before)


def test_deleted_service_comes_back(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("svc")
    cams.wait_ready("svc")
    old_uid = cams.service("svc")["metadata"]["uid"]
    cams.core.delete_namespaced_service("svc", cams.namespace)
    back = wait_until(lambda: (s := cams.service("svc")) and s["metadata"]["uid"] != old_uid and s,
                      timeout=REPAIR_WITHIN, what="the Service recreated")
    assert back["spec"]["ports"][0]["port"] == 8000
    assert back["metadata"]["ownerReferences"][0]["name"] == "svc"


def test_deleted_deployment_comes_back(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("dep")
    cams.wait_ready("dep")
    old_uid = cams.deployment("dep")["metadata"]["uid"]
    cams.apps.delete_namespaced_deployment("dep", cams.namespace)
    wait_until(lambda: (d := cams.deployment("dep")) and d["metadata"]["uid"] != old_uid,
               timeout=REPAIR_WITHIN, what="the Deployment recreated")
    cams.wait_ready("dep")


def test_hand_edits_of_managed_fields_are_reverted(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("edit", fps=10)
    cams.wait_ready("edit")
    hash_before = pod_hash(cams.deployment("edit"))

    cams.apps.patch_namespaced_deployment_scale("edit", cams.namespace, {"spec": {"replicas": 4}})
    wait_until(lambda: cams.deployment("edit")["spec"]["replicas"] == 1, timeout=REPAIR_WITHIN,
               what="replicas restored to 1")

    cams.apps.patch_namespaced_deployment(
        "edit", cams.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "camera", "image": "someone/else:1"}]}}}})
    wait_until(lambda: cams.deployment("edit")["spec"]["template"]["spec"]["containers"][0]["image"]
               == "drishti/stream:dev", timeout=REPAIR_WITHIN, what="image restored")
    assert pod_hash(cams.deployment("edit")) == hash_before

    cams.core.patch_namespaced_service(
        "edit", cams.namespace, {"spec": {"ports": [{"name": "http", "port": 1234, "targetPort": "http"}]}},
        _content_type="application/merge-patch+json")
    wait_until(lambda: [p["port"] for p in cams.service("edit")["spec"]["ports"]] == [8000],
               timeout=REPAIR_WITHIN, what="Service port restored")
    cams.wait_ready("edit")


def test_deleting_the_camera_removes_its_children(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("gone")
    cams.wait_ready("gone")
    cams.delete("gone")
    wait_until(lambda: cams.deployment("gone") is None and cams.service("gone") is None, timeout=60,
               what="children garbage-collected")
    # and they stay gone: a camera created afterwards is served, and the deleted one is not resurrected
    cams.create("after-gone")
    cams.wait_ready("after-gone")
    assert cams.deployment("gone") is None and cams.service("gone") is None


def test_pods_that_never_become_ready_degrade_the_camera(cams: Cameras, operator: OperatorProcess) -> None:
    cams.create("huge", resources={"requests": {"cpu": "500"}})  # no node has 500 CPUs: never scheduled
    camera = cams.wait_phase("huge", "Degraded")
    degraded = next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "Unschedulable"
    assert "Insufficient cpu" in degraded["message"]
    ready = next(c for c in camera["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"

    cams.patch("huge", {"spec": {"resources": {"requests": {"cpu": "100m"}}}})
    camera = cams.wait_ready("huge", generation=2)
    degraded = next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "False"


def test_scale_subresource(cams: Cameras, operator: OperatorProcess, kubectl_bin, k8s_env) -> None:
    cams.create("scaled")
    cams.wait_ready("scaled")
    subprocess.run([str(kubectl_bin), "scale", "vcam", "scaled", "--replicas=3", "-n", cams.namespace],
                   env=k8s_env, check=True, capture_output=True, timeout=30)
    wait_until(lambda: (cams.get("scaled") or {}).get("status", {}).get("readyReplicas") == 3, timeout=60,
               what="3 ready replicas")
    assert cams.deployment("scaled")["spec"]["replicas"] == 3
    scale = cams.custom.get_namespaced_custom_object_scale("drishti.io", "v1alpha1", cams.namespace,
                                                           "virtualcameras", "scaled")
    assert scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == (
        "app.kubernetes.io/name=drishti-stream,app.kubernetes.io/instance=scaled")


def test_operator_restart_duplicates_nothing_and_rolls_nothing(
        cams: Cameras, operator: OperatorProcess) -> None:
    for name in ("r1", "r2"):
        cams.create(name, fps=5)
    for name in ("r1", "r2"):
        cams.wait_ready(name)
    time.sleep(1.0)  # let the last status writes land

    def snapshot() -> dict:
        # The Deployment's resourceVersion is left out: its controller may still be writing its status.
        def deployment(name: str) -> tuple:
            d = cams.deployment(name)
            return d["metadata"]["uid"], d["metadata"]["generation"], pod_hash(d)

        return {name: (cams.get(name)["metadata"]["resourceVersion"], deployment(name),
                       cams.service(name)["metadata"]["resourceVersion"],
                       cams.replica_sets(name)) for name in ("r1", "r2")}

    before = snapshot()
    operator.restart()

    def resumed() -> bool:
        log = operator.text().rsplit("===== start", 1)[-1]
        return all(f"[{cams.namespace}/{name}] reconciled (unchanged)" in log for name in ("r1", "r2"))

    wait_until(resumed, timeout=60, what="the restarted operator resumed both cameras, changing nothing")
    # a camera created after the restart is served: the operator is past r1 and r2
    # and has written what it would
    cams.create("r3", fps=5)
    cams.wait_ready("r3")
    after = snapshot()
    assert after == before, f"a restart writes nothing: no new generation, no status change, no new pods\n" \
                            f"before {before}\nafter  {after}"
    assert len(cams.apps.list_namespaced_deployment(cams.namespace).items) == 3
    assert len(cams.core.list_namespaced_service(cams.namespace).items) == 3
    since_restart = operator.text().rsplit("===== start", 1)[-1]
    assert "Traceback" not in since_restart, since_restart[-4000:]


def test_a_spec_the_api_server_refuses_for_the_pod_is_reported_not_retried(
        cams: Cameras, operator: OperatorProcess) -> None:
    """Requests above limits pass the camera's schema but not the Deployment's: Degraded, then fixable."""
    cams.create("limits", resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
    camera = cams.wait_phase("limits", "Degraded")
    degraded = next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "Rejected" and "less than or equal to cpu limit" in degraded["message"]
    assert camera["status"]["observedGeneration"] == 1
    assert cams.deployment("limits") is None
    assert operator.running

    cams.patch("limits", {"spec": {"resources": {"requests": {"cpu": "500m"}}}})
    cams.wait_ready("limits", generation=2)


def test_pods_pass_the_restricted_pod_security_standard(cams: Cameras, operator: OperatorProcess) -> None:
    """The namespace enforces Pod Security `restricted`: the API server admits the camera's pods (with the
    GCS credentials volume too), or the ReplicaSet could not create them and the camera would never be
    Ready."""
    cams.core.patch_namespace(cams.namespace, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest"}}})
    cams.create("strict", source="gs://drishti-videos/gate.mp4", gcsCredentials={"secretName": "gcs-key"})
    cams.wait_ready("strict")
    pods = cams.core.list_namespaced_pod(cams.namespace,
                                         label_selector="app.kubernetes.io/instance=strict").items
    assert pods and all(p.spec.security_context.run_as_non_root for p in pods)


def test_a_camera_deleted_and_created_again_gets_its_own_children(cams: Cameras,
                                                                  operator: OperatorProcess) -> None:
    first = cams.create("again", fps=5)
    cams.wait_ready("again")
    cams.delete("again")
    second = cams.create("again", fps=6)  # at once: the old children may still be there
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    cams.wait_ready("again")

    def owned_by_the_new_camera() -> bool:
        children = (cams.deployment("again"), cams.service("again"))
        return all(c and [r["uid"] for r in c["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]
                   for c in children)

    wait_until(owned_by_the_new_camera, timeout=60, what="children owned by the new camera only")
    assert env_of(cams.deployment("again"))["DRISHTI_FPS"] == "6"


@pytest.mark.parametrize("reason,message", [
    ("CrashLoopBackOff", "back-off 40s restarting failed container=camera"),
    ("ImagePullBackOff", 'Back-off pulling image "drishti/stream:dev"'),
])
def test_a_failing_container_degrades_the_camera_and_recovery_clears_it(
        cams: Cameras, operator: OperatorProcess, reason: str, message: str) -> None:
    """The fake node runs no containers, so the test reports what a kubelet would, through the pod's
    status."""
    cams.create("failing")
    cams.wait_ready("failing")
    pod = cams.core.list_namespaced_pod(cams.namespace,
                                        label_selector="app.kubernetes.io/instance=failing").items[0]
    running = cams.api.sanitize_for_serialization(pod.status)

    def report(state: dict, ready: bool) -> None:
        flag = "True" if ready else "False"
        cams.core.patch_namespaced_pod_status(pod.metadata.name, cams.namespace, {"status": {
            "conditions": [{"type": "Ready", "status": flag}, {"type": "ContainersReady", "status": flag}],
            "containerStatuses": [{"name": "camera", "ready": ready, "restartCount": 3,
                                   "image": "drishti/stream:dev", "imageID": "", "started": ready,
                                   "state": state}],
        }})

    report({"waiting": {"reason": reason, "message": message}}, ready=False)
    camera = cams.wait_phase("failing", "Degraded")
    degraded = next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == reason and message in degraded["message"]
    assert camera["status"]["readyReplicas"] == 0

    report(running["containerStatuses"][0]["state"], ready=True)
    camera = cams.wait_ready("failing")
    assert next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")["status"] == "False"


def test_pods_the_namespace_quota_refuses_degrade_the_camera(
        cams: Cameras, operator: OperatorProcess) -> None:
    cams.core.create_namespaced_resource_quota(cams.namespace, {
        "metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}})
    wait_until(lambda: cams.core.read_namespaced_resource_quota("no-pods", cams.namespace).status.hard,
               timeout=30, what="the quota is in force")
    cams.create("quota")
    camera = cams.wait_phase("quota", "Degraded")
    degraded = next(c for c in camera["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ReplicaFailure" and "exceeded quota" in degraded["message"]

    cams.core.delete_namespaced_resource_quota("no-pods", cams.namespace)
    cams.wait_ready("quota", timeout=90)
