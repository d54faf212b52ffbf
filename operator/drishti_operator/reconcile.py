"""The Kopf handlers: one idempotent reconcile per camera, and child events for drift repair and status.

- `reconcile` runs on create, on every spec (or label) change and when the operator starts (resume): it renders
  the Deployment and the Service (`render`) and applies both (server-side apply: unchanged renderings change
  nothing). A spec the camera or the API server refuses is reported as Degraded and not retried until it
  changes; an unreachable or failing API server is retried.
- The operator indexes its Deployments and pods (server-side filtered by the `managed-by` label). A child's
  event repairs drift at once: a deleted child is applied again; a Deployment whose generation moved past
  the one the operator applied, or a Service whose managed fields differ from the rendering, is applied again.
- Status follows the children's events through the indices, debounced per camera, and is written only when
  it changes: a camera at rest costs no API request at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import kopf
import urllib3
from kubernetes.client.exceptions import ApiException

from drishti_operator import GROUP, MANAGER, PLURAL, VERSION
from drishti_operator.kube import Kube, connection_info, load_configuration
from drishti_operator.render import (
    DEFAULT_IMAGE,
    IMAGE_ENV,
    MANAGED_SELECTOR,
    InvalidSpec,
    epoch_of,
    labels,
    render_deployment,
    render_service,
)
from drishti_operator.status import Failure, camera_status, differs, summarize_deployment, summarize_pod
from drishti_operator.tracing import reconcile_span

CAMERAS = (GROUP, VERSION, PLURAL)
MANAGED = {"app.kubernetes.io/managed-by": MANAGER}
INSTANCE = "app.kubernetes.io/instance"
Key = tuple[str, str]

# The API server's words when a child would get a second controller (see reconcile).
PREVIOUS_OWNER = "Only one reference can have Controller set to true"

STATUS_MAX_DEFER_S = 5.0
WORKERS_ENV = "DRISHTI_OPERATOR_WORKERS"
STATUS_DELAY_ENV = "DRISHTI_OPERATOR_STATUS_DELAY"


class MemoryDiffBaseStorage(kopf.DiffBaseStorage):
    """Kopf's last-handled essence of each camera, kept in memory instead of in an annotation.

    The annotation would cost one more write per camera change (a patch of the camera, validated like any
    other). Nothing is lost without it: after a restart every camera looks new to Kopf and is reconciled,
    which the reconcile does anyway, idempotently, and without writing anything when nothing changed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, kopf.BodyEssence] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return self._essences.get(body.metadata.uid or "")

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self._essences[body.metadata.uid or ""] = essence

    def forget(self, uid: str) -> None:
        self._essences.pop(uid, None)


class UnmarkedProgressStorage(kopf.AnnotationsProgressStorage):
    """Kopf's handler progress in annotations (written only while a handler retries), minus Kopf's one-off
    `<prefix>/kopf-managed` marker, which would otherwise cost a patch of every new camera. The marker only
    lets other Kopf operators recognise these annotations; Kopf itself knows its prefix. (If Kopf renames
    this hook, the marker is simply written again: harmless.)"""

    def _store_marker(self, **_: Any) -> None:
        return None


@dataclass
class Applied:
    """What this operator process last applied for a camera: the yardstick for drift."""

    camera_uid: str
    generation: int  # the camera's generation these children were rendered from
    deployment_uid: str
    deployment_generation: int
    service_uid: str
    service_version: str


@dataclass
class Runtime:
    """Per-process state of the operator (Kopf's `memo.runtime`)."""

    kube: Kube
    image: str = DEFAULT_IMAGE
    status_delay: float = 0.2
    applied: dict[Key, Applied] = field(default_factory=dict)
    written: dict[Key, dict[str, Any]] = field(default_factory=dict)
    failures: dict[Key, tuple[int, Failure]] = field(default_factory=dict)
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    pending: set[Key] = field(default_factory=set)
    reconciling: int = 0  # reconciles in flight
    diffbase: MemoryDiffBaseStorage | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def lock(self, key: Key) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def forget(self, key: Key) -> None:
        for table in (self.applied, self.written, self.failures, self.locks):
            table.pop(key, None)  # type: ignore[attr-defined]


# --- configuration -----------------------------------------------------------------------------------------


class QuietChildEvents(logging.Filter):
    """Drops Kopf's "Handler '..._event' succeeded." lines: one per child event, thousands in a burst, and
    saying nothing (a repair or a failure is logged on its own)."""

    NOISE = frozenset(f"Handler '{name}' succeeded." for name in
                      ("deployment_event", "service_event", "pod_event", "camera_event"))

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.getMessage() not in self.NOISE



def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """Kopf's settings: Events only for problems, handler state in annotations only while a handler retries,
    the last-handled state in memory, watches of children filtered by the API server."""
    settings.posting.level = logging.WARNING  # Kubernetes Events only for warnings and errors
    settings.persistence.progress_storage = UnmarkedProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = MemoryDiffBaseStorage()
    for plural in ("deployments", "services", "pods"):
        settings.watching.label_selectors[plural] = MANAGED_SELECTOR
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    configure_kopf(settings)
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietChildEvents) for f in objects.filters):
        objects.addFilter(QuietChildEvents())
    workers = int(os.environ.get(WORKERS_ENV) or 8)
    try:
        configuration = load_configuration()
    except Exception as exc:  # no kubeconfig and not in a pod: nothing to retry
        raise kopf.PermanentError(f"no Kubernetes credentials: {exc}") from exc
    memo.runtime = Runtime(
        kube=Kube(configuration, workers=workers),
        image=os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE,
        status_delay=float(os.environ.get(STATUS_DELAY_ENV) or 0.2),
    )
    if isinstance(settings.persistence.diffbase_storage, MemoryDiffBaseStorage):
        memo.runtime.diffbase = settings.persistence.diffbase_storage
    logger.info("camera image %s, %d API workers", memo.runtime.image, workers)


@kopf.on.login()
async def login(**_: Any) -> kopf.ConnectionInfo:
    """Kopf's own connection uses the same credentials as the operator's client, read when needed."""
    try:
        configuration = load_configuration()
    except Exception as exc:
        raise kopf.LoginError(f"no Kubernetes credentials: {exc}") from exc
    return kopf.ConnectionInfo(**connection_info(configuration))


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        for task in list(runtime.tasks):
            task.cancel()
        runtime.kube.close()


# --- indices -----------------------------------------------------------------------------------------------


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a camera the operator needs, as plain data (no managedFields, no annotations)."""
    meta = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
        "kind": body.get("kind", "VirtualCamera"),
        "metadata": {key: _plain(meta.get(key)) for key in
                     ("name", "namespace", "uid", "generation", "creationTimestamp", "deletionTimestamp", "labels")
                     if meta.get(key) is not None},
        "spec": _plain(body.get("spec") or {}),
        "status": _plain(body.get("status") or {}),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@kopf.index(*CAMERAS)
async def cameras(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace, name): compact(body)}


@kopf.index("apps", "v1", "deployments", labels=MANAGED)
async def camera_deployments(namespace: str, labels: kopf.Labels, body: kopf.Body,
                             **_: Any) -> dict[Key, dict[str, Any]] | None:
    instance = labels.get(INSTANCE)
    return {(namespace, instance): summarize_deployment(body)} if instance else None


@kopf.index("pods", labels=MANAGED)
async def camera_pods(namespace: str, labels: kopf.Labels, body: kopf.Body,
                      **_: Any) -> dict[Key, dict[str, Any]] | None:
    instance = labels.get(INSTANCE)
    return {(namespace, instance): summarize_pod(body)} if instance else None


def _one(index: kopf.Index[Key, dict[str, Any]], key: Key) -> dict[str, Any] | None:
    return next(iter(index.get(key, ())), None)


@dataclass
class Indices:
    cameras: kopf.Index[Key, dict[str, Any]]
    deployments: kopf.Index[Key, dict[str, Any]]
    pods: kopf.Index[Key, dict[str, Any]]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indices:
        return cls(kwargs["cameras"], kwargs["camera_deployments"], kwargs["camera_pods"])

    def camera(self, key: Key) -> dict[str, Any] | None:
        return _one(self.cameras, key)

    def deployment(self, key: Key) -> dict[str, Any] | None:
        return _one(self.deployments, key)

    def pod_list(self, key: Key) -> list[dict[str, Any]]:
        return list(self.pods.get(key, ()))


# --- the reconcile -----------------------------------------------------------------------------------------


@kopf.on.resume(*CAMERAS)
@kopf.on.create(*CAMERAS)
@kopf.on.update(*CAMERAS)
async def reconcile(body: kopf.Body, reason: kopf.Reason, memo: kopf.Memo, logger: logging.Logger,
                    **kwargs: Any) -> None:
    """Render the children, apply them, write the status: the same steps whatever happened."""
    runtime: Runtime = memo.runtime
    camera = compact(body)
    key = (camera["metadata"]["namespace"], camera["metadata"]["name"])
    generation = camera["metadata"].get("generation", 0)
    indices = Indices.of(kwargs)
    runtime.reconciling += 1
    try:
        await _reconcile(runtime, indices, camera, key, generation, str(reason), logger)
    finally:
        runtime.reconciling -= 1
    # The status follows (debounced with the children's own events): one write for the whole burst.
    schedule_status(runtime, indices, key, logger)


async def _reconcile(runtime: Runtime, indices: Indices, camera: dict[str, Any], key: Key, generation: int,
                     action: str, logger: logging.Logger) -> None:
    namespace, name = key
    with reconcile_span(action, namespace, name, generation) as span:
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
            except (OSError, urllib3.exceptions.HTTPError) as exc:  # the API server is unreachable for now
                span.outcome = "unreachable"
                raise kopf.TemporaryError(f"API server unreachable: {exc}", delay=5) from None
            except ApiException as exc:
                span.outcome = f"api-error-{exc.status}"
                failure = Failure(_reason_of(exc), f"{_message_of(exc)}")
                if exc.status == 422 and PREVIOUS_OWNER in failure.message:
                    # A camera deleted and created again under the same name: the old camera's children
                    # are still there, owned by the old one, until the garbage collector removes them.
                    span.outcome = "waiting-for-gc"
                    raise kopf.TemporaryError("the previous camera of this name still owns its children; "
                                              "waiting for the garbage collector", delay=2) from None
                if exc.status in (400, 422):  # the API server refuses this rendering: a spec problem
                    await _fail(runtime, indices, camera, failure, logger)
                    raise kopf.PermanentError(f"the API server rejected a child: {failure.message}") from None
                if exc.status in (401, 403):
                    await _fail(runtime, indices, camera, failure, logger, permanent=False)
                    raise kopf.TemporaryError(f"not allowed: {failure.message}", delay=30) from None
                raise kopf.TemporaryError(f"API error {exc.status}: {failure.message}", delay=5) from None
            runtime.failures.pop(key, None)
            _remember(runtime, camera, live_deployment, live_service)
            span.outcome = _outcome(before, live_deployment)
            logger.info("reconciled (%s): deployment generation %s", span.outcome,
                        live_deployment["metadata"].get("generation"))


def _outcome(before: Mapping[str, Any] | None, live: Mapping[str, Any]) -> str:
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


def _reason_of(exc: ApiException) -> str:
    return {400: "Rejected", 401: "Unauthorized", 403: "Forbidden", 409: "Conflict", 422: "Rejected"}.get(
        exc.status or 0, "APIError")


def _message_of(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason or exc)


async def _fail(runtime: Runtime, indices: Indices, camera: Mapping[str, Any], failure: Failure,
                logger: logging.Logger, *, permanent: bool = True) -> None:
    """Reports a failure in the status (Degraded) instead of retrying a spec that cannot work."""
    meta = camera["metadata"]
    key = (meta["namespace"], meta["name"])
    generation = meta.get("generation", 0)
    if permanent:
        runtime.failures[key] = (generation, failure)
    logger.warning("%s: %s", failure.reason, failure.message)
    await _write_status(runtime, indices, camera, indices.deployment(key), observed_generation=generation,
                        failure=failure, logger=logger)


async def _write_status(runtime: Runtime, indices: Indices, camera: Mapping[str, Any],
                        deployment: Mapping[str, Any] | None, *, observed_generation: int | None = None,
                        failure: Failure | None = None, logger: logging.Logger) -> bool:
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
    status = camera_status({**camera, "status": current}, deployment, indices.pod_list(key),
                           observed_generation=observed_generation, failure=failure, epoch=epoch)
    if not differs(current, status):
        return False
    try:
        await runtime.kube.patch_camera_status(meta["namespace"], meta["name"], status)
    except ApiException as exc:
        if exc.status == 404:  # the camera is gone
            return False
        raise
    runtime.written[key] = status
    logger.debug("status: %s", status["phase"])
    return True


# --- children: drift repair and status ---------------------------------------------------------------------


def _subset(desired: Any, live: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (lists element-wise, in order)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(_subset(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) \
            and all(_subset(d, item) for d, item in zip(desired, live, strict=True))
    return desired == live


def _owned_by(body: Mapping[str, Any], camera: Mapping[str, Any]) -> bool:
    refs = body.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == camera["metadata"]["uid"] and ref.get("controller") for ref in refs)


def _live_camera(runtime: Runtime, indices: Indices, key: Key) -> dict[str, Any] | None:
    """The indexed camera, unless it is gone or going: its children are then the garbage collector's."""
    camera = indices.camera(key)
    if camera is None or camera["metadata"].get("deletionTimestamp"):
        return None
    return camera


async def _still_there(runtime: Runtime, camera: Mapping[str, Any]) -> bool:
    """Asks the API server whether the camera still exists (after a child's deletion, which may be its own)."""
    meta = camera["metadata"]
    current = await runtime.kube.get_camera(meta["namespace"], meta["name"])
    return bool(current) and current["metadata"].get("uid") == meta["uid"] \
        and not current["metadata"].get("deletionTimestamp")


async def _repair(runtime: Runtime, indices: Indices, camera: Mapping[str, Any], kind: str, cause: str,
                  logger: logging.Logger) -> None:
    meta = camera["metadata"]
    key = (meta["namespace"], meta["name"])
    with reconcile_span(f"repair-{kind.lower()}", meta["namespace"], meta["name"], meta.get("generation")) as span:
        span.span.set_attribute("drishti.drift", cause)
        try:
            gone = cause == "deleted" and not await _still_there(runtime, camera)
        except ApiException as exc:
            span.outcome = f"api-error-{exc.status}"
            logger.warning("%s %s: cannot read the camera: %s", kind, cause, _message_of(exc))
            return
        if gone:
            span.outcome = "camera-gone"
            return
        try:
            if kind == "Deployment":
                live = await runtime.kube.apply(render_deployment(camera, default_image=runtime.image))
                if key in runtime.applied:
                    runtime.applied[key].deployment_uid = live["metadata"]["uid"]
                    runtime.applied[key].deployment_generation = int(live["metadata"].get("generation", 0))
            else:
                live = await runtime.kube.apply(render_service(camera))
                if key in runtime.applied:
                    runtime.applied[key].service_uid = live["metadata"]["uid"]
                    runtime.applied[key].service_version = str(live["metadata"].get("resourceVersion", ""))
        except InvalidSpec:
            span.outcome = "invalid"
            return
        except ApiException as exc:
            # Typically the namespace is being deleted (403) or is gone (404): the children go with it.
            # Anything else is retried by the next event of the child, or by the next reconcile.
            span.outcome = f"api-error-{exc.status}"
            level = logging.INFO if exc.status in (403, 404, 409) else logging.WARNING
            logger.log(level, "%s %s: not restored: %s", kind, cause, _message_of(exc))
            return
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            span.outcome = "unreachable"
            logger.warning("%s %s: not restored, API server unreachable: %s", kind, cause, exc)
            return
        span.outcome = "repaired"
        logger.info("%s %s: restored", kind, cause)


def _newer(version: str, than: str) -> bool:
    try:
        return int(version) > int(than)
    except ValueError:
        return version != than


@asynccontextmanager
async def _owner_as_applied(runtime: Runtime, indices: Indices, key: Key,
                            child: Mapping[str, Any]) -> AsyncIterator[tuple[dict[str, Any], Applied] | None]:
    """For an event on a child: the live camera that owns it and what this process applied for that camera,
    held under the camera's lock; None when it is not this process's to act on (no such camera, another
    owner, or not reconciled by this process yet: the reconcile will see to it)."""
    camera = _live_camera(runtime, indices, key)
    if camera is None or not _owned_by(child, camera):
        yield None
        return
    async with runtime.lock(key):
        applied = runtime.applied.get(key)
        yield None if applied is None or applied.camera_uid != camera["metadata"]["uid"] else (camera, applied)


@kopf.on.event("apps", "v1", "deployments", labels=MANAGED)
async def deployment_event(event: kopf.RawEvent, body: kopf.Body, namespace: str, labels: kopf.Labels,
                           memo: kopf.Memo, logger: logging.Logger, **kwargs: Any) -> None:
    indices = Indices.of(kwargs)
    await _repair_drift("Deployment", _deployment_drift, event, body, memo, logger, indices)
    schedule_status(memo.runtime, indices, (namespace, labels.get(INSTANCE, "")), logger)


@kopf.on.event("services", labels=MANAGED)
async def service_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: logging.Logger,
                        **kwargs: Any) -> None:
    await _repair_drift("Service", _service_drift, event, body, memo, logger, Indices.of(kwargs))


Drift = Callable[[kopf.RawEvent, kopf.Body, dict[str, Any], Applied], "str | None"]


async def _repair_drift(kind: str, drift: Drift, event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo,
                        logger: logging.Logger, indices: Indices) -> None:
    """An event on a child: when `drift` finds it no longer what this process applied, apply it again."""
    runtime: Runtime = memo.runtime
    meta = body.get("metadata", {})
    key = (meta.get("namespace", ""), (meta.get("labels") or {}).get(INSTANCE, ""))
    async with _owner_as_applied(runtime, indices, key, body) as owner:
        if owner is not None and (cause := drift(event, body, *owner)):
            await _repair(runtime, indices, owner[0], kind, cause, logger)


def _deployment_drift(event: kopf.RawEvent, body: kopf.Body, camera: dict[str, Any],
                      applied: Applied) -> str | None:
    meta = body.get("metadata", {})
    if meta.get("uid") != applied.deployment_uid:
        return None  # an older incarnation's event, or one the operator has not seen applied yet
    if event.get("type") == "DELETED":
        return "deleted"
    if int(meta.get("generation", 0)) > applied.deployment_generation:
        return "edited"
    if not _subset(labels_of(camera), dict(meta.get("labels") or {})):
        return "relabelled"
    return None


def _service_drift(event: kopf.RawEvent, body: kopf.Body, camera: dict[str, Any], applied: Applied) -> str | None:
    # A Service has no generation: an edit shows as a newer resourceVersion, compared with what the operator owns.
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
    if _subset(desired["spec"], body.get("spec")) and _subset(desired["metadata"]["labels"], meta.get("labels")):
        applied.service_version = version  # someone else's change, to fields the operator does not own
        return None
    return "edited"


def labels_of(camera: Mapping[str, Any]) -> dict[str, str]:
    """The labels every child of the camera carries: the standard ones, then the camera's own."""
    return {**(camera["metadata"].get("labels") or {}), **labels(camera["metadata"]["name"])}


@kopf.on.event("pods", labels=MANAGED)
async def pod_event(namespace: str, labels: kopf.Labels, memo: kopf.Memo, logger: logging.Logger,
                    **kwargs: Any) -> None:
    schedule_status(memo.runtime, Indices.of(kwargs), (namespace, labels.get(INSTANCE, "")), logger)


@kopf.on.event(*CAMERAS)
async def camera_event(event: kopf.RawEvent, namespace: str, name: str, uid: str, memo: kopf.Memo,
                       **_: Any) -> None:
    if event.get("type") == "DELETED":
        runtime: Runtime = memo.runtime
        runtime.forget((namespace, name))
        if runtime.diffbase is not None:
            runtime.diffbase.forget(uid)


def schedule_status(runtime: Runtime, indices: Indices, key: Key, logger: logging.Logger) -> None:
    """Refreshes the camera's status shortly: a burst of child events costs one computation."""
    if key not in runtime.applied or key in runtime.pending:
        return
    runtime.pending.add(key)
    task = asyncio.create_task(_refresh(runtime, indices, key, logger))
    runtime.tasks.add(task)
    task.add_done_callback(runtime.tasks.discard)


async def _refresh(runtime: Runtime, indices: Indices, key: Key, logger: logging.Logger) -> None:
    try:
        await asyncio.sleep(runtime.status_delay)
        # Reconciles first: while cameras are being created or changed, their children's API calls go before
        # status writes (bounded, so that a long burst still shows progress).
        deferred = 0.0
        while runtime.reconciling and deferred < STATUS_MAX_DEFER_S:
            await asyncio.sleep(0.1)
            deferred += 0.1
        runtime.pending.discard(key)
        async with runtime.lock(key):
            camera = _live_camera(runtime, indices, key)
            if camera is None or key not in runtime.applied:
                return
            with reconcile_span("status", key[0], key[1], camera["metadata"].get("generation")) as span:
                wrote = await _write_status(runtime, indices, camera, indices.deployment(key), logger=logger)
                span.outcome = "written" if wrote else "unchanged"
    except asyncio.CancelledError:
        raise
    except ApiException as exc:  # e.g. the namespace is being deleted; the next event tries again
        runtime.pending.discard(key)
        logger.info("status of %s/%s not written: %s", *key, _message_of(exc))
    except Exception:  # never crash the operator over a status write; the next event tries again
        runtime.pending.discard(key)
        logger.exception("status refresh of %s/%s failed", *key)


def all_handlers() -> Iterable[Any]:
    """The handler functions (for tests that run the operator in-process)."""
    return (startup, login, cleanup, cameras, camera_deployments, camera_pods, reconcile, deployment_event,
            service_event, pod_event, camera_event)
