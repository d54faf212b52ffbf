"""A camera's status from its Deployment and pods: phase, conditions, transitions."""

from __future__ import annotations

from datetime import UTC, datetime

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


def camera(replicas: int = 1, generation: int = 1, status: dict | None = None) -> dict:
    return {"metadata": {"name": "cam", "namespace": "ns", "generation": generation},
            "spec": {"source": "synthetic", "replicas": replicas, "port": 8000}, "status": status or {}}


def deployment(replicas: int = 1, template: str = "h1", conditions: list | None = None) -> dict:
    """A Deployment whose controller has not written any status yet: the camera's status comes from its
    pods."""
    return summarize_deployment({
        "metadata": {"uid": "d", "generation": 1, "labels": {}},
        "spec": {"replicas": replicas,
                 "template": {"metadata": {"annotations": {"drishti.io/pod-spec-hash": template}}}},
        "status": {"conditions": conditions or []},
    })


def pod(template: str = "h1", ready: bool = True, name: str = "p") -> dict:
    return summarize_pod({
        "metadata": {"name": name, "annotations": {"drishti.io/pod-spec-hash": template}},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    })


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
    again = camera_status(camera(status=first), deployment(), [pod()], observed_generation=1, now=T1)
    assert again == first and not differs(first, again)
    flipped = camera_status(camera(status=first), deployment(), [pod(ready=False)], observed_generation=1,
                            now=T1)
    cond = conditions(flipped)
    assert (cond["Ready"]["status"] == "False"
            and cond["Ready"]["lastTransitionTime"] == "2026-01-01T00:05:00Z")
    assert cond["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert differs(first, flipped)


def unschedulable_pod() -> dict:
    return {"metadata": {"name": "cam-1"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/1 nodes are available: 1 Insufficient cpu."}]}}


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
