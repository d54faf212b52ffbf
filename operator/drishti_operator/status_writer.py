"""Status writes: computed from the indices, debounced per camera, written only when they change.

A camera at rest costs no API request at all; a burst of child events costs one computation and at most one
write. Status writes give way to reconciles in flight (bounded by STATUS_MAX_DEFER_S).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kopf

from drishti_operator.indices import CameraIndex, DeploymentIndex, Indices, PodIndex, key_of
from drishti_operator.kube import Verdict, classify
from drishti_operator.render import MANAGED_LABELS, InvalidSpec, epoch_of
from drishti_operator.runtime import Key, Runtime
from drishti_operator.status import Failure, camera_status, differs
from drishti_operator.tracing import reconcile_span

STATUS_MAX_DEFER_S = 5.0


async def write_status(runtime: Runtime, indices: Indices, camera: Mapping[str, Any], *,
                       observed_generation: int | None = None, failure: Failure | None = None,
                       logger: kopf.Logger) -> bool:
    """Computes the camera's status and writes it if it changed; returns whether it wrote."""
    meta = camera["metadata"]
    key = (meta["namespace"], meta["name"])
    current = runtime.written.get(key) or camera.get("status") or {}
    if failure is None and key in runtime.failures:
        failed_generation, known = runtime.failures[key]
        if failed_generation == meta.get("generation"):
            failure, observed_generation = known, failed_generation  # observed, and found wanting
    if observed_generation is None:
        applied = runtime.applied.get(key)
        observed_generation = applied.generation if applied and applied.camera_uid == meta.get("uid") \
            else int(current.get("observedGeneration") or 0)
    try:
        epoch = epoch_of(camera)
    except InvalidSpec:
        epoch = None
    status = camera_status({**camera, "status": current}, indices.deployment(key), indices.pod_list(key),
                           observed_generation=observed_generation, failure=failure, epoch=epoch)
    if not differs(current, status):
        return False
    try:
        await runtime.kube.patch_camera_status(meta["namespace"], meta["name"], status)
    except Exception as exc:
        problem = classify(exc)
        if problem is not None and problem.verdict is Verdict.GONE:  # the camera is gone
            return False
        raise
    runtime.written[key] = status
    logger.debug("status: %s", status["phase"])
    return True


def schedule_status(runtime: Runtime, indices: Indices, key: Key, logger: kopf.Logger) -> None:
    """Refreshes the camera's status shortly: a burst of child events costs one computation."""
    if key not in runtime.applied or key in runtime.pending:
        return
    runtime.pending.add(key)
    task = asyncio.create_task(_refresh(runtime, indices, key, logger))
    runtime.tasks.add(task)
    task.add_done_callback(runtime.tasks.discard)


async def _refresh(runtime: Runtime, indices: Indices, key: Key, logger: kopf.Logger) -> None:
    try:
        await asyncio.sleep(runtime.status_delay)
        # Reconciles first: while cameras are being created or changed, their children's API calls go before
        # status writes (bounded, so that a long burst still shows progress).
        await runtime.no_reconcile_within(STATUS_MAX_DEFER_S)
        runtime.pending.discard(key)
        async with runtime.lock(key):
            camera = indices.live_camera(key)
            if camera is None or key not in runtime.applied:
                return
            with reconcile_span("status", key[0], key[1], camera["metadata"].get("generation")) as span:
                wrote = await write_status(runtime, indices, camera, logger=logger)
                span.outcome = "written" if wrote else "unchanged"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never crash the operator over a status write; the next event tries again
        runtime.pending.discard(key)
        problem = classify(exc)
        if problem is None:
            logger.exception("status refresh of %s/%s failed", *key)
        else:  # e.g. the namespace is being deleted
            logger.info("status of %s/%s not written: %s", *key, problem.message)


@kopf.on.event("pods", labels=MANAGED_LABELS)
async def pod_event(*, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger,
                    cameras: CameraIndex | None = None, camera_deployments: DeploymentIndex | None = None,
                    camera_pods: PodIndex | None = None, **_: Any) -> None:
    schedule_status(memo.runtime, Indices.of(cameras, camera_deployments, camera_pods), key_of(body), logger)
