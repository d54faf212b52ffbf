"""The reconcile: one idempotent pass per camera, the same steps whatever happened.

It runs on create, on every spec (or label) change and when the operator starts (resume): it renders the
Deployment and the Service (`render`) and applies both (server-side apply: unchanged renderings change
nothing). A spec the camera or the API server refuses is reported as Degraded and not retried until it
changes; an unreachable or failing API server is retried (the policy is `kube.classify`'s), and a 5xx that
outlasts a few retries is reported as Degraded meanwhile: it may be how the API server refuses this child.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import kopf

from drishti_operator.indices import CAMERAS, CameraIndex, DeploymentIndex, Indices, PodIndex, compact
from drishti_operator.kube import ApiError, Verdict, classify
from drishti_operator.render import InvalidSpec, render_deployment, render_service
from drishti_operator.runtime import Applied, Key, Runtime
from drishti_operator.status import DeploymentSummary, Failure
from drishti_operator.status_writer import schedule_status, write_status
from drishti_operator.tracing import reconcile_span

REPORT_AFTER_RETRIES = 3  # a 5xx still there after this many retries (5 s apart) shows in the status


@kopf.on.resume(*CAMERAS)
@kopf.on.create(*CAMERAS)
@kopf.on.update(*CAMERAS)
async def reconcile(*, body: kopf.Body, reason: str, retry: int, memo: kopf.Memo, logger: kopf.Logger,
                    cameras: CameraIndex | None = None, camera_deployments: DeploymentIndex | None = None,
                    camera_pods: PodIndex | None = None, **_: Any) -> None:
    """Render the children, apply them, write the status."""
    runtime: Runtime = memo.runtime
    indices = Indices.of(cameras, camera_deployments, camera_pods)
    camera = compact(body)
    key = (camera["metadata"]["namespace"], camera["metadata"]["name"])
    with runtime.reconciling():
        await _reconcile(runtime, indices, camera, key, str(reason), logger, retry=retry)
    # The status follows (debounced with the children's own events): one write for the whole burst.
    schedule_status(runtime, indices, key, logger)


async def _reconcile(runtime: Runtime, indices: Indices, camera: dict[str, Any], key: Key, action: str,
                     logger: kopf.Logger, *, retry: int = 0) -> None:
    with reconcile_span(action, *key, camera["metadata"].get("generation", 0)) as span:
        async with runtime.lock(key):
            before = indices.deployment(key)
            try:
                deployment = render_deployment(camera, default_image=runtime.image)
                service = render_service(camera)
            except InvalidSpec as exc:
                span.outcome = "invalid"
                await _fail(runtime, indices, camera, Failure("InvalidSpec", str(exc)), logger)
                raise kopf.PermanentError(f"invalid spec: {exc}") from None
            try:
                live_deployment = await runtime.kube.apply(deployment)
                live_service = await runtime.kube.apply(service)
            except Exception as exc:
                problem = classify(exc)
                if problem is None:
                    raise
                span.outcome = _outcome_of(problem)
                await _give_way(runtime, indices, camera, problem, logger, retry)
            runtime.failures.pop(key, None)
            _remember(runtime, camera, live_deployment, live_service)
            span.outcome = _outcome(before, live_deployment)
            logger.info("reconciled (%s): deployment generation %s", span.outcome,
                        live_deployment["metadata"].get("generation"))


def _outcome_of(problem: ApiError) -> str:
    if problem.verdict is Verdict.PREVIOUS_OWNER:
        return "waiting-for-gc"
    return "unreachable" if problem.status is None else f"api-error-{problem.status}"


async def _give_way(runtime: Runtime, indices: Indices, camera: dict[str, Any], problem: ApiError,
                    logger: kopf.Logger, retry: int) -> NoReturn:
    """Ends a reconcile whose apply failed: reports what the user must fix, and tells Kopf when to retry."""
    failure = Failure(problem.reason, problem.message)
    if problem.verdict is Verdict.PREVIOUS_OWNER:
        # A camera deleted and created again under the same name: the old camera's children are still
        # there, owned by the old one, until the garbage collector removes them.
        raise kopf.TemporaryError("the previous camera of this name still owns its children; "
                                  "waiting for the garbage collector", delay=problem.delay) from None
    if problem.verdict is Verdict.REJECTED:  # the API server refuses this rendering: a spec problem
        await _fail(runtime, indices, camera, failure, logger)
        raise kopf.PermanentError(f"the API server rejected a child: {problem.message}") from None
    if problem.verdict is Verdict.DENIED:
        await _fail(runtime, indices, camera, failure, logger, permanent=False)
        raise kopf.TemporaryError(f"not allowed: {problem.message}", delay=problem.delay) from None
    if problem.status is None:
        raise kopf.TemporaryError(problem.message, delay=problem.delay) from None
    if problem.status >= 500 and retry >= REPORT_AFTER_RETRIES:
        await _fail(runtime, indices, camera, failure, logger, permanent=False)
    raise kopf.TemporaryError(f"API error {problem.status}: {problem.message}", delay=problem.delay) from None


def _outcome(before: DeploymentSummary | None, live: Mapping[str, Any]) -> str:
    if before is None:
        return "created"
    return "unchanged" if before.get("generation") == live["metadata"].get("generation") else "updated"


def _remember(runtime: Runtime, camera: Mapping[str, Any], deployment: Mapping[str, Any],
              service: Mapping[str, Any]) -> None:
    meta = camera["metadata"]
    runtime.applied[(meta["namespace"], meta["name"])] = Applied(
        camera_uid=meta["uid"],
        generation=int(meta.get("generation", 0)),
        deployment_uid=deployment["metadata"]["uid"],
        deployment_generation=int(deployment["metadata"].get("generation", 0)),
        service_uid=service["metadata"]["uid"],
        service_version=str(service["metadata"].get("resourceVersion", "")),
    )


async def _fail(runtime: Runtime, indices: Indices, camera: Mapping[str, Any], failure: Failure,
                logger: kopf.Logger, *, permanent: bool = True) -> None:
    """Reports a failure in the status (Degraded). A status the API server does not take either is logged:
    the failure being reported stays what the reconcile raises."""
    meta = camera["metadata"]
    generation = meta.get("generation", 0)
    if permanent:
        runtime.failures[(meta["namespace"], meta["name"])] = (generation, failure)
    logger.warning("%s: %s", failure.reason, failure.message)
    try:
        await write_status(runtime, indices, camera, observed_generation=generation, failure=failure,
                           logger=logger)
    except Exception as exc:
        problem = classify(exc)
        if problem is None:
            raise
        logger.info("status of %s/%s not written: %s", meta["namespace"], meta["name"], problem.message)


@kopf.on.event(*CAMERAS)
async def camera_event(*, event: kopf.RawEvent, namespace: str | None, name: str, uid: str, memo: kopf.Memo,
                       **_: Any) -> None:
    """A deleted camera: forget what this process knew of it."""
    if event.get("type") == "DELETED":
        runtime: Runtime = memo.runtime
        runtime.forget((namespace or "", name))
        if runtime.diffbase is not None:
            runtime.diffbase.forget(uid)
