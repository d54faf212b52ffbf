"""Drift repair: a child's event, when the child is no longer what this process applied, applies it again.

A deleted child is applied again; a Deployment whose generation moved past the one the operator applied (or
whose labels lost the camera's), or a Service whose fields the operator owns differ from its rendering, is
applied again. One `Child` per kind (`DEPLOYMENT`, `SERVICE`) says how to render it, how to tell its drift and
what to remember of it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import kopf

from drishti_operator.indices import CameraIndex, DeploymentIndex, Indices, PodIndex, key_of
from drishti_operator.kube import classify
from drishti_operator.render import (
    MANAGED_LABELS,
    InvalidSpec,
    child_labels,
    render_deployment,
    render_service,
)
from drishti_operator.runtime import Applied, Key, Runtime
from drishti_operator.status_writer import schedule_status
from drishti_operator.tracing import reconcile_span

Body = Mapping[str, Any]


def _subset(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (lists element-wise, in order)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) \
            and all(_subset(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) \
            and all(_subset(d, item) for d, item in zip(desired, live, strict=True))
    return bool(desired == live)


def _newer(version: str, than: str) -> bool:
    try:
        return int(version) > int(than)
    except ValueError:
        return version != than


def _deployment_drift(event: kopf.RawEvent, body: Body, camera: dict[str, Any],
                      applied: Applied) -> str | None:
    meta = body.get("metadata", {})
    if meta.get("uid") != applied.deployment_uid:
        return None  # an older incarnation's event, or one the operator has not seen applied yet
    if event.get("type") == "DELETED":
        return "deleted"
    if int(meta.get("generation", 0)) > applied.deployment_generation:
        return "edited"
    if not _subset(child_labels(camera), dict(meta.get("labels") or {})):
        return "relabelled"
    return None


def _service_drift(event: kopf.RawEvent, body: Body, camera: dict[str, Any],
                   applied: Applied) -> str | None:
    # A Service has no generation: an edit shows as a newer resourceVersion, compared with what the operator
    # owns.
    meta = body.get("metadata", {})
    if meta.get("uid") != applied.service_uid:
        return None
    if event.get("type") == "DELETED":
        return "deleted"
    version = str(meta.get("resourceVersion", ""))
    if not _newer(version, applied.service_version):
        return None
    try:
        desired = render_service(camera)
    except InvalidSpec:
        return None
    if _subset(desired["spec"], body.get("spec")) \
            and _subset(desired["metadata"]["labels"], meta.get("labels")):
        applied.service_version = version  # someone else's change, to fields the operator does not own
        return None
    return "edited"


def _remember_deployment(applied: Applied, live: Body) -> None:
    applied.deployment_uid = live["metadata"]["uid"]
    applied.deployment_generation = int(live["metadata"].get("generation", 0))


def _remember_service(applied: Applied, live: Body) -> None:
    applied.service_uid = live["metadata"]["uid"]
    applied.service_version = str(live["metadata"].get("resourceVersion", ""))


@dataclass(frozen=True)
class Child:
    """How drift repair treats one kind of child."""

    kind: str
    render: Callable[[Runtime, Body], dict[str, Any]]
    drift: Callable[[kopf.RawEvent, Body, dict[str, Any], Applied], str | None]
    remember: Callable[[Applied, Body], None]


DEPLOYMENT = Child("Deployment",
                   lambda runtime, camera: render_deployment(camera, default_image=runtime.image),
                   _deployment_drift, _remember_deployment)
SERVICE = Child("Service", lambda _, camera: render_service(camera), _service_drift, _remember_service)


def _owned_by(body: Body, camera: Body) -> bool:
    refs = body.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == camera["metadata"]["uid"] and ref.get("controller") for ref in refs)


@asynccontextmanager
async def _owner_as_applied(runtime: Runtime, indices: Indices, key: Key,
                            child: Body) -> AsyncIterator[tuple[dict[str, Any], Applied] | None]:
    """For an event on a child: the live camera that owns it and what this process applied for that camera,
    held under the camera's lock; None when it is not this process's to act on (no such camera, another
    owner, or not reconciled by this process yet: the reconcile will see to it)."""
    camera = indices.live_camera(key)
    if camera is None or not _owned_by(child, camera):
        yield None
        return
    async with runtime.lock(key):
        applied = runtime.applied.get(key)
        if applied is None or applied.camera_uid != camera["metadata"]["uid"]:
            yield None
        else:
            yield camera, applied


async def repair_drift(child: Child, runtime: Runtime, indices: Indices, event: kopf.RawEvent, body: Body,
                       logger: kopf.Logger) -> None:
    """An event on a child: when the child is no longer what this process applied, apply it again."""
    async with _owner_as_applied(runtime, indices, key_of(body), body) as owner:
        if owner is not None and (cause := child.drift(event, body, *owner)):
            await _repair(child, runtime, *owner, cause, logger)


async def _still_there(runtime: Runtime, camera: Body) -> bool:
    """Asks the API server whether the camera still exists (after a child's deletion, which may be its
    own)."""
    meta = camera["metadata"]
    current = await runtime.kube.get_camera(meta["namespace"], meta["name"])
    return current is not None and current["metadata"].get("uid") == meta["uid"] \
        and not current["metadata"].get("deletionTimestamp")


async def _repair(child: Child, runtime: Runtime, camera: dict[str, Any], applied: Applied, cause: str,
                  logger: kopf.Logger) -> None:
    """Applies the child again. A failure is logged, not retried: the child's next event, or the next
    reconcile, tries again (typically the namespace is being deleted, and the children go with it)."""
    meta = camera["metadata"]
    with reconcile_span(f"repair-{child.kind.lower()}", meta["namespace"], meta["name"],
                        meta.get("generation")) as span:
        span.span.set_attribute("drishti.drift", cause)
        doing = "cannot read the camera"
        try:
            if cause == "deleted" and not await _still_there(runtime, camera):
                span.outcome = "camera-gone"
                return
            doing = "not restored"
            live = await runtime.kube.apply(child.render(runtime, camera))
        except InvalidSpec:
            span.outcome = "invalid"
            return
        except Exception as exc:
            problem = classify(exc)
            if problem is None:
                raise
            span.outcome = "unreachable" if problem.status is None else f"api-error-{problem.status}"
            level = logging.INFO if problem.routine else logging.WARNING
            logger.log(level, "%s %s: %s: %s", child.kind, cause, doing, problem.message)
            return
        child.remember(applied, live)
        span.outcome = "repaired"
        logger.info("%s %s: restored", child.kind, cause)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED_LABELS)
async def deployment_event(*, event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger,
                           cameras: CameraIndex | None = None,
                           camera_deployments: DeploymentIndex | None = None,
                           camera_pods: PodIndex | None = None, **_: Any) -> None:
    indices = Indices.of(cameras, camera_deployments, camera_pods)
    await repair_drift(DEPLOYMENT, memo.runtime, indices, event, body, logger)
    schedule_status(memo.runtime, indices, key_of(body), logger)


@kopf.on.event("services", labels=MANAGED_LABELS)
async def service_event(*, event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger,
                        cameras: CameraIndex | None = None, camera_deployments: DeploymentIndex | None = None,
                        camera_pods: PodIndex | None = None, **_: Any) -> None:
    indices = Indices.of(cameras, camera_deployments, camera_pods)
    await repair_drift(SERVICE, memo.runtime, indices, event, body, logger)
