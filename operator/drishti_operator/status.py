"""A camera's status, computed by pure functions from what its Deployment and pods report.

`summarize_deployment` and `summarize_pod` keep the few fields that matter (they are what the operator
indexes); `camera_status` turns them into `phase`, the `Ready`/`Progressing`/`Degraded` conditions and the
stream URL. A condition keeps its `lastTransitionTime` while its status stays the same, so an unchanged
camera computes an unchanged status, and the operator writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

from drishti_operator.render import HASH_ANNOTATION, label_selector, port_of, stream_url

# Container waiting reasons that mean the pod will not become ready without a change.
WAITING_PROBLEMS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})
CONDITION_TYPES = ("Ready", "Progressing", "Degraded")


@dataclass(frozen=True)
class Failure:
    """Something only the operator knows went wrong (an invalid spec, a rejected child): reported as
    Degraded."""

    reason: str
    message: str


class RolloutState(TypedDict):
    """The Deployment's own status, as its controller last wrote it."""

    observedGeneration: int
    replicas: int
    updatedReplicas: int
    readyReplicas: int
    availableReplicas: int
    conditions: list[dict[str, Any]]


class DeploymentSummary(TypedDict):
    """What the operator indexes of a camera's Deployment."""

    uid: str | None
    generation: int
    labels: dict[str, str]
    owners: list[str | None]
    deleting: bool
    replicas: int
    hash: str | None  # the pod template's HASH_ANNOTATION: which pods run the latest spec
    status: RolloutState


class PodSummary(TypedDict):
    """What the operator indexes of a camera's pod."""

    name: str | None
    hash: str | None
    ready: bool
    deleting: bool
    problem: list[str] | None  # [reason, message] when the pod will not become ready on its own


def summarize_deployment(body: Mapping[str, Any]) -> DeploymentSummary:
    """What the operator keeps of a live Deployment: identity, generation and rollout state."""
    meta = body.get("metadata", {})
    status = body.get("status") or {}
    return {
        "uid": meta.get("uid"),
        "generation": meta.get("generation", 0),
        "labels": dict(meta.get("labels") or {}),
        "owners": [ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("controller")],
        "deleting": bool(meta.get("deletionTimestamp")),
        "replicas": body.get("spec", {}).get("replicas", 1),
        "hash": (body.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {})
        .get(HASH_ANNOTATION),
        "status": {
            "observedGeneration": status.get("observedGeneration", 0),
            "replicas": status.get("replicas", 0),
            "updatedReplicas": status.get("updatedReplicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "availableReplicas": status.get("availableReplicas", 0),
            "conditions": [
                {key: cond.get(key) for key in ("type", "status", "reason", "message")}
                for cond in status.get("conditions") or []
            ],
        },
    }


def pod_problem(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """Why a pod will not become ready on its own (unschedulable, crash loop, image pull ...), if it will
    not."""
    status = body.get("status") or {}
    if status.get("phase") == "Failed":
        return status.get("reason") or "PodFailed", status.get("message") or "the pod failed"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                and cond.get("reason") == "Unschedulable":
            return "Unschedulable", cond.get("message") or "no node can run the pod"
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        terminated = (container.get("lastState") or {}).get("terminated") or {}
        # before the waiting reason: a container killed for memory again and again is also in CrashLoopBackOff
        if terminated.get("reason") == "OOMKilled" and not container.get("ready"):
            return "OOMKilled", f"container {container.get('name')} ran out of memory; raise resources.limits"
        if reason == "CrashLoopBackOff" and (said := (terminated.get("message") or "").strip()):
            # the container's own last words (the camera writes its one-line reason there)
            name, code = container.get("name"), terminated.get("exitCode")
            return reason, f"container {name} exited with {code}: {said}"
        if reason in WAITING_PROBLEMS:
            message = waiting.get("message") or reason
            return reason, f"container {container.get('name')}: {message}"
    return None


def summarize_pod(body: Mapping[str, Any]) -> PodSummary:
    meta = body.get("metadata", {})
    conditions = (body.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    problem = pod_problem(body)
    return {
        "name": meta.get("name"),
        "hash": (meta.get("annotations") or {}).get(HASH_ANNOTATION),
        "ready": ready,
        "deleting": bool(meta.get("deletionTimestamp")),
        "problem": list(problem) if problem else None,
    }


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, ok: bool, reason: str, message: str, generation: int,
               previous: Mapping[str, Mapping[str, Any]], now: str) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(kind)
    since = before["lastTransitionTime"] if before and before.get("status") == status \
        and before.get("lastTransitionTime") else now
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation}


def _degraded(deployment: DeploymentSummary | None, pods: list[PodSummary],
              failure: Failure | None) -> tuple[str, str] | None:
    if failure is not None:
        return failure.reason, failure.message
    troubled = [problem for pod in pods if (problem := pod["problem"]) and not pod["deleting"]]
    if troubled:
        reason, message = troubled[0]
        return reason, f"{len(troubled)} of {len(pods)} pods: {message}"
    for cond in deployment["status"]["conditions"] if deployment is not None else []:
        if cond["type"] == "ReplicaFailure" and cond["status"] == "True":
            return "ReplicaFailure", cond.get("message") or "pods cannot be created"
        if cond["type"] == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "ProgressDeadlineExceeded", cond.get("message") or "the rollout stalled"
    return None


def camera_status(
    camera: Mapping[str, Any],
    deployment: DeploymentSummary | None,
    pods: Iterable[PodSummary],
    *,
    observed_generation: int,
    failure: Failure | None = None,
    epoch: float | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The whole `.status` of a camera, from summaries of its Deployment and pods (see `summarize_*`)."""
    meta, spec = camera["metadata"], camera.get("spec", {})
    name, namespace = meta["name"], meta["namespace"]
    previous_status = camera.get("status") or {}
    previous = {c.get("type"): c for c in previous_status.get("conditions") or []}
    stamp = now_rfc3339(now)
    pods = [pod for pod in pods if not pod["deleting"]]
    desired = int(spec.get("replicas", 1))
    # Counted from the pods themselves: they are fresher than the Deployment's status, which its controller
    # writes later (much later on a busy control plane). A pod runs the latest spec when it carries the hash
    # of the Deployment's current pod template.
    latest = deployment["hash"] if deployment is not None else None
    total = len(pods)
    ready = sum(1 for pod in pods if pod["ready"])
    updated = [pod for pod in pods if latest and pod["hash"] == latest]
    updated_ready = sum(1 for pod in updated if pod["ready"])

    degraded = _degraded(deployment, pods, failure)
    if failure is not None:
        progressing = (False, "Failed", "the operator cannot apply this spec; change it to retry")
    elif deployment is None:
        progressing = (True, "Creating", "creating the camera's Deployment")
    elif observed_generation < meta.get("generation", 0):
        progressing = (True, "Reconciling", "applying the latest spec")
    elif updated_ready < desired or total > desired:  # else every pod is updated and ready
        progressing = (True, "RollingOut",
                       f"{updated_ready} of {desired} pods run the latest spec and are ready")
    else:
        progressing = (False, "RolloutComplete", f"{updated_ready} of {desired} pods run the latest spec")

    if desired == 0:
        is_ready, why, said = False, "ScaledToZero", "spec.replicas is 0"
    elif deployment is not None and ready >= desired:  # old pods still serving count: the stream works
        is_ready, why, said = True, "PodsReady", f"{ready} of {desired} pods ready"
    else:
        is_ready, why, said = False, "PodsNotReady", f"{ready} of {desired} pods ready"

    if degraded:
        phase = "Degraded"
    elif desired == 0:
        phase = "ScaledToZero"
    elif progressing[0]:
        phase = "Progressing"
    elif is_ready:
        phase = "Ready"
    else:
        phase = "Pending"

    conditions = [
        _condition("Ready", is_ready, why, said, observed_generation, previous, stamp),
        _condition("Progressing", *progressing, observed_generation, previous, stamp),
        _condition("Degraded", degraded is not None, degraded[0] if degraded else "AsExpected",
                   degraded[1] if degraded else "no problem reported", observed_generation, previous, stamp),
    ]
    port = port_of(camera)
    status: dict[str, Any] = {
        "observedGeneration": observed_generation,
        "phase": phase,
        "conditions": conditions,
        "replicas": total,
        "readyReplicas": ready,
        "selector": label_selector(name),
        "serviceName": name,
        "url": stream_url(name, namespace, port),
    }
    epoch = epoch if epoch is not None else previous_status.get("epoch")
    if epoch is not None:
        status["epoch"] = epoch
    return status


def differs(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """True when writing `desired` would change `current` (only the keys the operator writes count)."""
    current = current or {}
    return any(current.get(key) != value for key, value in desired.items())
