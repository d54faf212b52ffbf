"""A camera's status from its Deployment and pods: phase, conditions, transitions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from drishti_operator.status import (
    Failure,
    camera_status,
    differs,
    pod_problem,
    summarize_deployment,
    summarize_pod,
)

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 5, 0, tzinfo=UTC)


def api(body: dict) -> dict:
    """A body as the API server sends it: decoded JSON (equal strings, but not the same objects)."""
    return json.loads(json.dumps(body))


def camera(replicas: int = 1, generation: int = 1, status: dict | None = None) -> dict:
    return {"metadata": {"name": "cam", "namespace": "ns", "generation": generation},
            "spec": {"source": "synthetic", "replicas": replicas, "port": 8000}, "status": status or {}}


def deployment(replicas: int = 1, template: str = "h1", conditions: list | None = None) -> dict:
    """A Deployment whose controller has not written any status yet: the camera's status comes from its
    pods."""
    return summarize_deployment(api({
        "metadata": {"uid": "d", "generation": 1, "labels": {}},
        "spec": {"replicas": replicas,
                 "template": {"metadata": {"annotations": {"drishti.io/pod-spec-hash": template}}}},
        "status": {"conditions": conditions or []},
    }))


def pod(template: str = "h1", ready: bool = True, name: str = "p") -> dict:
    return summarize_pod(api({
        "metadata": {"name": name, "annotations": {"drishti.io/pod-spec-hash": template}},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }))


def conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_ready_camera() -> None:
    status = camera_status(camera(), deployment(), [pod()], observed_generation=1, epoch=1.0e9, now=T0)
    assert status["phase"] == "Ready"
    cond = conditions(status)
    assert cond["Ready"]["status"] == "True" and cond["Ready"]["reason"] == "PodsReady"
    assert cond["Progressing"]["status"] == "False" and cond["Degraded"]["status"] == "False"
    assert status["url"] == "ws://cam.ns.svc:8000/ws/stream"
    assert status["serviceName"] == "cam" and status["readyReplicas"] == 1 and status["replicas"] == 1
    assert status["observedGeneration"] == 1 and status["epoch"] == 1.0e9
    assert status["selector"] == "app.kubernetes.io/name=drishti-stream,app.kubernetes.io/instance=cam"
    assert all(c["lastTransitionTime"] == "2026-01-01T00:00:00Z" for c in status["conditions"])


def test_no_deployment_yet_is_progressing() -> None:
    status = camera_status(camera(), None, [], observed_generation=1, now=T0)
    assert status["phase"] == "Progressing"
    assert conditions(status)["Progressing"]["reason"] == "Creating"
    assert conditions(status)["Ready"]["status"] == "False"


def test_rollout_in_progress_keeps_ready_while_old_pods_serve() -> None:
    old, new = pod("h1", name="old"), pod("h2", ready=False, name="new")
    status = camera_status(camera(generation=2), deployment(template="h2"), [old, new], observed_generation=2,
                           now=T0)
    cond = conditions(status)
    assert status["phase"] == "Progressing"
    assert cond["Progressing"]["status"] == "True" and cond["Progressing"]["reason"] == "RollingOut"
    assert cond["Ready"]["status"] == "True"
    done = camera_status(camera(generation=2), deployment(template="h2"), [pod("h2")], observed_generation=2,
                         now=T0)
    assert done["phase"] == "Ready" and conditions(done)["Progressing"]["reason"] == "RolloutComplete"


def test_pods_are_counted_not_the_deployment_status() -> None:
    status = camera_status(camera(replicas=2), deployment(replicas=2),
                           [pod(name="a"), pod(ready=False, name="b")], observed_generation=1, now=T0)
    assert status["readyReplicas"] == 1 and status["replicas"] == 2
    assert conditions(status)["Ready"]["status"] == "False"


def test_spec_not_yet_applied_is_reconciling() -> None:
    status = camera_status(camera(generation=3), deployment(), [pod()], observed_generation=2, now=T0)
    assert conditions(status)["Progressing"]["reason"] == "Reconciling"


def test_transition_time_kept_while_status_unchanged() -> None:
    first = camera_status(camera(), deployment(), [pod()], observed_generation=1, now=T0)
    again = camera_status(camera(status=api(first)), deployment(), [pod()], observed_generation=1, now=T1)
    assert again == first and not differs(first, again)
    flipped = camera_status(camera(status=api(first)), deployment(), [pod(ready=False)],
                            observed_generation=1, now=T1)
    cond = conditions(flipped)
    assert (cond["Ready"]["status"] == "False"
            and cond["Ready"]["lastTransitionTime"] == "2026-01-01T00:05:00Z")
    assert cond["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert differs(first, flipped)


def unschedulable_pod() -> dict:
    return api({"metadata": {"name": "cam-1"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Insufficient cpu."}]}})


def test_unschedulable_pod_degrades_the_camera() -> None:
    assert pod_problem(unschedulable_pod()) == ("Unschedulable",
                                                "0/1 nodes are available: 1 Insufficient cpu.")
    status = camera_status(camera(), deployment(), [summarize_pod(unschedulable_pod())],
                           observed_generation=1, now=T0)
    cond = conditions(status)
    assert status["phase"] == "Degraded"
    assert cond["Degraded"]["status"] == "True" and cond["Degraded"]["reason"] == "Unschedulable"
    assert "Insufficient cpu" in cond["Degraded"]["message"]
    assert cond["Ready"]["status"] == "False"


def test_container_problems() -> None:
    crash = {"status": {"phase": "Running", "containerStatuses": [
        {"name": "camera", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                                 "message": "back-off 5m0s"}}}]}}
    assert pod_problem(crash) == ("CrashLoopBackOff", "container camera: back-off 5m0s")
    said = {"status": {"phase": "Running", "containerStatuses": [
        {"name": "camera", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                                 "message": "back-off 10s"}},
         "lastState": {"terminated": {"reason": "Error", "exitCode": 2,
                                      "message": "drishti-stream: /videos/x.mp4: no such file\n"}}}]}}
    assert pod_problem(said) == ("CrashLoopBackOff",
                                 "container camera exited with 2: "
                                 "drishti-stream: /videos/x.mp4: no such file")
    pull = {"status": {"phase": "Pending", "containerStatuses": [
        {"name": "camera", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert pod_problem(pull)[0] == "ImagePullBackOff"
    oom = {"status": {"phase": "Running", "containerStatuses": [
        {"name": "camera", "ready": False, "state": {"running": {}},
         "lastState": {"terminated": {"reason": "OOMKilled"}}}]}}
    assert pod_problem(oom)[0] == "OOMKilled"
    oom_loop = {"status": {"phase": "Running", "containerStatuses": [  # what a real kubelet reports
        {"name": "camera", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "message": "starting"}}}]}}
    assert pod_problem(oom_loop)[0] == "OOMKilled"
    healthy = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                          "containerStatuses": [{"name": "camera", "ready": True, "state": {"running": {}}}]}}
    assert pod_problem(healthy) is None and summarize_pod(healthy)["ready"] is True


def test_deleting_pods_are_ignored() -> None:
    going = summarize_pod({**unschedulable_pod(), "metadata": {"name": "x", "deletionTimestamp": "now"}})
    status = camera_status(camera(), deployment(), [going, pod()], observed_generation=1, now=T0)
    assert status["phase"] == "Ready" and status["replicas"] == 1


def test_stalled_rollout_is_degraded() -> None:
    stalled = deployment(conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": "timed out"}])
    status = camera_status(camera(), stalled, [], observed_generation=1, now=T0)
    assert conditions(status)["Degraded"]["reason"] == "ProgressDeadlineExceeded"


def test_operator_failure_is_degraded() -> None:
    status = camera_status(camera(), None, [], observed_generation=1,
                           failure=Failure("InvalidSpec", "DRISHTI_FPS=0: too small"), now=T0)
    cond = conditions(status)
    assert status["phase"] == "Degraded"
    assert cond["Degraded"]["reason"] == "InvalidSpec" and "DRISHTI_FPS" in cond["Degraded"]["message"]
    assert cond["Progressing"]["status"] == "False"


def test_scaled_to_zero() -> None:
    status = camera_status(camera(replicas=0), deployment(replicas=0), [], observed_generation=1, now=T0)
    assert status["phase"] == "ScaledToZero"
    assert conditions(status)["Ready"]["reason"] == "ScaledToZero"


def test_epoch_is_kept_when_not_given() -> None:
    status = camera_status(camera(status={"epoch": 123.0}), deployment(), [pod()], observed_generation=1,
                           now=T0)
    assert status["epoch"] == 123.0


# ---- every situation a camera can be in, and the whole status it reports ----------------------------------

NOT_SCHEDULED = "0/1 nodes are available: 1 Insufficient cpu."


def troubled(name: str = "t", message: str = NOT_SCHEDULED) -> dict:
    return summarize_pod(api({"metadata": {"name": name, "annotations": {"drishti.io/pod-spec-hash": "h1"}},
                              "status": {"phase": "Pending", "conditions": [
                                  {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                   "message": message}]}}))


def expected_conditions(ready: tuple, progressing: tuple, degraded: tuple = (False, "AsExpected",
                                                                           "no problem reported"),
                        generation: int = 1, since: str = "2026-01-01T00:00:00Z") -> list[dict]:
    return [{"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message,
             "lastTransitionTime": since, "observedGeneration": generation}
            for kind, (ok, reason, message) in zip(("Ready", "Progressing", "Degraded"),
                                                   (ready, progressing, degraded), strict=True)]


COMPLETE = (False, "RolloutComplete", "1 of 1 pods run the latest spec")
READY = (True, "PodsReady", "1 of 1 pods ready")

# name: (camera replicas, deployment (None: none yet), pods, failure,
#        expected phase, Ready, Progressing, Degraded (None: not degraded), status.replicas, readyReplicas)
SITUATIONS = {
    "one pod, ready, latest spec": (
        1, deployment(), [pod()], None,
        "Ready", READY, COMPLETE, None, 1, 1),
    "two pods, both ready": (
        2, deployment(2), [pod(name="a"), pod(name="b")], None,
        "Ready", (True, "PodsReady", "2 of 2 pods ready"),
        (False, "RolloutComplete", "2 of 2 pods run the latest spec"), None, 2, 2),
    "more pods than wanted (scaling down)": (
        1, deployment(), [pod(name="a"), pod(name="b")], None,
        "Progressing", (True, "PodsReady", "2 of 1 pods ready"),
        (True, "RollingOut", "2 of 1 pods run the latest spec and are ready"), None, 2, 2),
    "old pod serves while the new one starts": (
        1, deployment(template="h2"), [pod("h1", name="old"), pod("h2", ready=False, name="new")], None,
        "Progressing", READY,
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"), None, 2, 1),
    "only an old pod, ready": (
        1, deployment(template="h2"), [pod("h1")], None,
        "Progressing", READY,
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"), None, 1, 1),
    "one new pod ready, one old pod ready": (
        1, deployment(template="h2"), [pod("h1", name="old"), pod("h2", name="new")], None,
        "Progressing", (True, "PodsReady", "2 of 1 pods ready"),
        (True, "RollingOut", "1 of 1 pods run the latest spec and are ready"), None, 2, 2),
    "latest pod not ready yet": (
        1, deployment(), [pod(ready=False)], None,
        "Progressing", (False, "PodsNotReady", "0 of 1 pods ready"),
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"), None, 1, 0),
    "one of two pods ready": (
        2, deployment(2), [pod(name="a"), pod(ready=False, name="b")], None,
        "Progressing", (False, "PodsNotReady", "1 of 2 pods ready"),
        (True, "RollingOut", "1 of 2 pods run the latest spec and are ready"), None, 2, 1),
    "no pod yet": (
        1, deployment(), [], None,
        "Progressing", (False, "PodsNotReady", "0 of 1 pods ready"),
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"), None, 0, 0),
    "a Deployment without the hash: no pod counts as latest": (
        1, deployment(template=None), [pod(template=None)], None,
        "Progressing", READY,
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"), None, 1, 1),
    "no Deployment yet": (
        1, None, [], None,
        "Progressing", (False, "PodsNotReady", "0 of 1 pods ready"),
        (True, "Creating", "creating the camera's Deployment"), None, 0, 0),
    "no Deployment, a leftover pod ready": (
        1, None, [pod()], None,
        "Progressing", (False, "PodsNotReady", "1 of 1 pods ready"),
        (True, "Creating", "creating the camera's Deployment"), None, 1, 1),
    "scaled to zero": (
        0, deployment(0), [], None,
        "ScaledToZero", (False, "ScaledToZero", "spec.replicas is 0"),
        (False, "RolloutComplete", "0 of 0 pods run the latest spec"), None, 0, 0),
    "scaling to zero, a pod still there": (
        0, deployment(0), [pod()], None,
        "ScaledToZero", (False, "ScaledToZero", "spec.replicas is 0"),
        (True, "RollingOut", "1 of 0 pods run the latest spec and are ready"), None, 1, 1),
    "scaled to zero, a pod cannot be scheduled": (
        0, deployment(0), [troubled()], None,
        "Degraded", (False, "ScaledToZero", "spec.replicas is 0"),
        (True, "RollingOut", "0 of 0 pods run the latest spec and are ready"),
        (True, "Unschedulable", f"1 of 1 pods: {NOT_SCHEDULED}"), 1, 0),
    "a spec the operator cannot apply": (
        1, None, [], Failure("InvalidSpec", "DRISHTI_FPS=0: too small"),
        "Degraded", (False, "PodsNotReady", "0 of 1 pods ready"),
        (False, "Failed", "the operator cannot apply this spec; change it to retry"),
        (True, "InvalidSpec", "DRISHTI_FPS=0: too small"), 0, 0),
    "a spec the operator cannot apply, the old pods still serve": (
        1, deployment(), [pod()], Failure("Rejected", "the API server said no"),
        "Degraded", READY, (False, "Failed", "the operator cannot apply this spec; change it to retry"),
        (True, "Rejected", "the API server said no"), 1, 1),
    "a failure wins over a pod's problem": (
        1, deployment(), [troubled()], Failure("Rejected", "no"),
        "Degraded", (False, "PodsNotReady", "0 of 1 pods ready"),
        (False, "Failed", "the operator cannot apply this spec; change it to retry"),
        (True, "Rejected", "no"), 1, 0),
    "one of two pods cannot be scheduled": (
        2, deployment(2), [pod(name="a"), troubled()], None,
        "Degraded", (False, "PodsNotReady", "1 of 2 pods ready"),
        (True, "RollingOut", "1 of 2 pods run the latest spec and are ready"),
        (True, "Unschedulable", f"1 of 2 pods: {NOT_SCHEDULED}"), 2, 1),
    "two pods cannot be scheduled: the first one's reason": (
        2, deployment(2), [troubled("x", "first"), troubled("y", "second")], None,
        "Degraded", (False, "PodsNotReady", "0 of 2 pods ready"),
        (True, "RollingOut", "0 of 2 pods run the latest spec and are ready"),
        (True, "Unschedulable", "2 of 2 pods: first"), 2, 0),
    "a leaving pod's problem is not the camera's": (
        1, deployment(), [{**troubled(), "deleting": True}, pod()], None,
        "Ready", READY, COMPLETE, None, 1, 1),
    "the Deployment's pods cannot be created": (
        1, deployment(conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": "exceeded quota: pods=1"}]), [], None,
        "Degraded", (False, "PodsNotReady", "0 of 1 pods ready"),
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"),
        (True, "ReplicaFailure", "exceeded quota: pods=1"), 0, 0),
    "the Deployment's pods cannot be created, no message": (
        1, deployment(conditions=[{"type": "Progressing", "status": "True",
                                   "reason": "NewReplicaSetAvailable"},
                                  {"type": "ReplicaFailure", "status": "True"}]), [pod()], None,
        "Degraded", READY, COMPLETE, (True, "ReplicaFailure", "pods cannot be created"), 1, 1),
    "a ReplicaFailure that is over": (
        1, deployment(conditions=[{"type": "ReplicaFailure", "status": "False", "message": "x"},
                                  {"type": "Available", "status": "True",
                                   "reason": "ProgressDeadlineExceeded"}]), [pod()], None,
        "Ready", READY, COMPLETE, None, 1, 1),
    "a rollout under way, as the Deployment says": (
        1, deployment(conditions=[{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                   "message": 'ReplicaSet "cam-2" is progressing.'}]), [pod()], None,
        "Ready", READY, COMPLETE, None, 1, 1),
    "a ReplicaFailure of unknown status": (
        1, deployment(conditions=[{"type": "ReplicaFailure", "status": "Unknown", "message": "x"}]), [pod()],
        None, "Ready", READY, COMPLETE, None, 1, 1),
    "a stalled rollout": (
        1, deployment(conditions=[{"type": "Progressing", "status": "False",
                                   "reason": "ProgressDeadlineExceeded",
                                   "message": 'ReplicaSet "cam-1" has timed out progressing.'}]),
        [pod()], None,
        "Degraded", READY, COMPLETE,
        (True, "ProgressDeadlineExceeded", 'ReplicaSet "cam-1" has timed out progressing.'), 1, 1),
    "a stalled rollout, no message": (
        1, deployment(conditions=[{"type": "Progressing", "status": "False",
                                   "reason": "ProgressDeadlineExceeded"}]), [], None,
        "Degraded", (False, "PodsNotReady", "0 of 1 pods ready"),
        (True, "RollingOut", "0 of 1 pods run the latest spec and are ready"),
        (True, "ProgressDeadlineExceeded", "the rollout stalled"), 0, 0),
}


@pytest.mark.parametrize("situation", SITUATIONS)
def test_each_situation_reports_its_phase_conditions_and_counts(situation: str) -> None:
    replicas, deploy, pods, failure, phase, ready, progressing, degraded, total, ready_pods = \
        SITUATIONS[situation]
    status = camera_status(camera(replicas=replicas), deploy, pods, observed_generation=1, failure=failure,
                           now=T0)
    assert status == {
        "observedGeneration": 1,
        "phase": phase,
        "conditions": expected_conditions(ready, progressing, degraded or (False, "AsExpected",
                                                                           "no problem reported")),
        "replicas": total,
        "readyReplicas": ready_pods,
        "selector": "app.kubernetes.io/name=drishti-stream,app.kubernetes.io/instance=cam",
        "serviceName": "cam",
        "url": "ws://cam.ns.svc:8000/ws/stream",
    }


def test_spec_not_yet_applied_reports_the_generation_it_describes() -> None:
    status = camera_status(camera(generation=3), deployment(), [pod()], observed_generation=2, now=T0)
    assert status["phase"] == "Progressing" and status["observedGeneration"] == 2
    assert status["conditions"] == expected_conditions(
        READY, (True, "Reconciling", "applying the latest spec"), generation=2)
    applied = camera_status(camera(generation=3), deployment(), [pod()], observed_generation=3, now=T0)
    assert applied["phase"] == "Ready"
    assert applied["conditions"] == expected_conditions(READY, COMPLETE, generation=3)


def test_a_camera_without_generation_is_not_behind() -> None:
    body = camera()
    del body["metadata"]["generation"]
    for observed in (0, 1):  # 0: nothing recorded yet
        status = camera_status(body, deployment(), [pod()], observed_generation=observed, now=T0)
        assert status["phase"] == "Ready"


def test_replicas_default_to_one_and_the_port_to_the_settings_default() -> None:
    body = {"metadata": {"name": "cam", "namespace": "ns", "generation": 1}, "spec": {"source": "synthetic"}}
    status = camera_status(body, deployment(), [pod()], observed_generation=1, now=T0)
    assert status["phase"] == "Ready" and status["url"] == "ws://cam.ns.svc:8000/ws/stream"
    assert "epoch" not in status


def test_transition_time_moves_only_when_a_condition_flips() -> None:
    since = "2025-12-31T00:00:00Z"
    previous = [{"type": "Ready", "status": "True", "lastTransitionTime": since},
                {"type": "Progressing", "status": "True", "lastTransitionTime": since},
                {"type": "Degraded", "status": "False"}]  # no time written: it gets one now
    status = camera_status(camera(status=api({"conditions": previous})), deployment(), [pod()],
                           observed_generation=1, now=T1)
    assert {c["type"]: c["lastTransitionTime"] for c in status["conditions"]} == {
        "Ready": since, "Progressing": "2026-01-01T00:05:00Z", "Degraded": "2026-01-01T00:05:00Z"}
    recovering = [{"type": "Ready", "status": "False", "lastTransitionTime": since},
                  {"type": "Progressing", "status": "False", "lastTransitionTime": since},
                  {"type": "Degraded", "status": "True", "lastTransitionTime": since}]
    status = camera_status(camera(status=api({"conditions": recovering})), deployment(), [pod()],
                           observed_generation=1, now=T1)
    assert {c["type"]: c["lastTransitionTime"] for c in status["conditions"]} == {
        "Ready": "2026-01-01T00:05:00Z", "Progressing": since, "Degraded": "2026-01-01T00:05:00Z"}


def test_the_given_epoch_replaces_the_recorded_one() -> None:
    status = camera_status(camera(status={"epoch": 123.0}), deployment(), [pod()], observed_generation=1,
                           epoch=456.0, now=T0)
    assert status["epoch"] == 456.0
    assert camera_status(camera(status={"epoch": 0.0}), deployment(), [pod()], observed_generation=1,
                         now=T0)["epoch"] == 0.0


def test_the_time_is_now_when_not_given() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = camera_status(camera(), deployment(), [pod()], observed_generation=1)["conditions"][0][
        "lastTransitionTime"]
    after = datetime.now(UTC)
    assert before <= datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= after


def test_differs_compares_only_the_keys_the_operator_writes() -> None:
    assert differs(None, {"phase": "Ready"}) and differs({}, {"phase": "Ready"})
    assert not differs(None, {}) and not differs({"phase": "Ready", "extra": 1}, {"phase": "Ready"})
    assert differs({"phase": "Ready", "url": "a"}, {"phase": "Ready", "url": "b"})


# ---- what the operator keeps of a Deployment and of a pod ------------------------------------------------

def test_summarize_deployment_keeps_identity_and_rollout_state() -> None:
    body = {
        "metadata": {"uid": "d-1", "generation": 4, "labels": {"team": "crowd"},
                     "deletionTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"uid": "cam-uid", "controller": True},
                                         {"uid": "other", "controller": False}, {"uid": "plain"}]},
        "spec": {"replicas": 3, "template": {"metadata": {"annotations": {
            "drishti.io/pod-spec-hash": "abc", "other": "x"}}}},
        "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 1,
                   "availableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicas",
                                   "message": "ok", "lastUpdateTime": "2026-01-01T00:00:00Z"},
                                  {"type": "ReplicaFailure", "status": "True"}]},
    }
    assert summarize_deployment(api(body)) == {
        "uid": "d-1", "generation": 4, "labels": {"team": "crowd"}, "owners": ["cam-uid"], "deleting": True,
        "replicas": 3, "hash": "abc",
        "status": {"observedGeneration": 3, "replicas": 4, "updatedReplicas": 2, "readyReplicas": 1,
                   "availableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicas",
                                   "message": "ok"},
                                  {"type": "ReplicaFailure", "status": "True", "reason": None,
                                   "message": None}]},
    }


def test_summarize_deployment_of_a_bare_body() -> None:
    assert summarize_deployment({"metadata": {}, "status": None}) == {
        "uid": None, "generation": 0, "labels": {}, "owners": [], "deleting": False, "replicas": 1,
        "hash": None,
        "status": {"observedGeneration": 0, "replicas": 0, "updatedReplicas": 0, "readyReplicas": 0,
                   "availableReplicas": 0, "conditions": []},
    }


def test_summarize_pod() -> None:
    body = {"metadata": {"name": "cam-1", "annotations": {"drishti.io/pod-spec-hash": "abc"},
                         "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                                          {"type": "Ready", "status": "True"}]}}
    assert summarize_pod(api(body)) == {"name": "cam-1", "hash": "abc", "ready": True, "deleting": True,
                                   "problem": None}
    assert summarize_pod(unschedulable_pod()) == {"name": "cam-1", "hash": None, "ready": False,
                                                  "deleting": False,
                                                  "problem": ["Unschedulable", NOT_SCHEDULED]}
    not_ready = {"metadata": {}, "status": {"conditions": [{"type": "ContainersReady", "status": "True"},
                                                           {"type": "Ready", "status": "False"}]}}
    assert summarize_pod(api(not_ready))["ready"] is False
    unknown = {"metadata": {}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    assert summarize_pod(api(unknown))["ready"] is False  # e.g. its node stopped reporting
    gated = {"metadata": {}, "status": {"conditions": [  # a readiness gate (GKE's NEG) met, Ready not yet
        {"type": "cloud.google.com/load-balancer-neg-ready", "status": "True"},
        {"type": "Ready", "status": "False"}]}}
    assert summarize_pod(api(gated))["ready"] is False
    assert summarize_pod({"metadata": {}, "status": None})["ready"] is False


def waiting(reason: str, message: str | None = None, **container) -> dict:
    state = {"reason": reason, **({"message": message} if message else {})}
    return {"name": "camera", "ready": False, "state": {"waiting": state}, **container}


def died(reason: str, **terminated) -> dict:
    return {"lastState": {"terminated": {"reason": reason, **terminated}}}


# name: (pod status, expected problem)
PROBLEMS = {
    "failed pod": ({"phase": "Failed", "reason": "Evicted", "message": "low on memory"},
                   ("Evicted", "low on memory")),
    "failed pod, nothing said": ({"phase": "Failed"}, ("PodFailed", "the pod failed")),
    "succeeded pod": ({"phase": "Succeeded", "reason": "Completed"}, None),
    "unschedulable, nothing said": (
        {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                             "reason": "Unschedulable"}]},
        ("Unschedulable", "no node can run the pod")),
    "scheduling gated is not unschedulable": (
        {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                             "reason": "SchedulingGated", "message": "gated"}]}, None),
    "not scheduled, no reason given": (
        {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}, None),
    "scheduled": ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True",
                                                       "reason": "Unschedulable"}]}, None),
    "another condition false": (
        {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False", "reason": "Unschedulable"}]},
        None),
    "scheduled after a condition that is fine": (
        {"phase": "Pending", "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "taints"}]},
        ("Unschedulable", "taints")),
    "image pull, kubelet's message": (
        {"phase": "Pending", "containerStatuses": [waiting("ErrImagePull", "pull access denied")]},
        ("ErrImagePull", "container camera: pull access denied")),
    "image pull, nothing said": (
        {"phase": "Pending", "containerStatuses": [waiting("ImagePullBackOff")]},
        ("ImagePullBackOff", "container camera: ImagePullBackOff")),
    "an init container's problem": (
        {"phase": "Pending", "initContainerStatuses": [waiting("InvalidImageName", "bad ref", name="init")]},
        ("InvalidImageName", "container init: bad ref")),
    "second container's problem": (
        {"phase": "Pending", "containerStatuses": [
            {"name": "ok", "ready": True, "state": {"running": {}}},
            waiting("CreateContainerConfigError", 'secret "gcs" not found')]},
        ("CreateContainerConfigError", 'container camera: secret "gcs" not found')),
    "still creating is no problem": (
        {"phase": "Pending", "containerStatuses": [waiting("ContainerCreating")]}, None),
    "crash loop with last words": (
        {"phase": "Running", "containerStatuses": [
            waiting("CrashLoopBackOff", "back-off 10s",
                    **died("Error", exitCode=1, message="  no video \n"))]},
        ("CrashLoopBackOff", "container camera exited with 1: no video")),
    "crash loop, blank last words": (
        {"phase": "Running", "containerStatuses": [
            waiting("CrashLoopBackOff", "back-off 10s", **died("Error", exitCode=1, message=" \n"))]},
        ("CrashLoopBackOff", "container camera: back-off 10s")),
    "an error with last words, not yet in a crash loop": (
        {"phase": "Running", "containerStatuses": [
            waiting("RunContainerError", "oci error", **died("Error", exitCode=128, message="boom"))]},
        ("RunContainerError", "container camera: oci error")),
    "killed for memory": (
        {"phase": "Running", "containerStatuses": [
            {"name": "camera", "ready": False, "state": {"running": {}}, **died("OOMKilled")}]},
        ("OOMKilled", "container camera ran out of memory; raise resources.limits")),
    "killed for memory once, ready again": (
        {"phase": "Running", "containerStatuses": [
            {"name": "camera", "ready": True, "state": {"running": {}}, **died("OOMKilled")}]},
        None),
    "restarted after an error, ready again": (
        {"phase": "Running", "containerStatuses": [
            {"name": "camera", "ready": True, "state": {"running": {}}, **died("Error", message="x")}]},
        None),
}


@pytest.mark.parametrize("situation", PROBLEMS)
def test_pod_problem(situation: str) -> None:
    status, problem = PROBLEMS[situation]
    assert pod_problem(api({"metadata": {"name": "cam-1"}, "status": status})) == problem


def test_every_waiting_problem_is_reported() -> None:
    for reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull",
                   "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
                   "RunContainerError"):
        assert pod_problem(api({"status": {"containerStatuses": [waiting(reason, "m")]}})) == (
            reason, "container camera: m")
