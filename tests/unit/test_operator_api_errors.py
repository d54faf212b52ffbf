"""The operator's one policy for failed API calls (`kube.classify`), and what the reconcile, the drift repair
and the status writer do with each verdict.

The API client is replaced by an in-memory stand-in for its three calls (apply, get_camera,
patch_camera_status) that fails as told: a 401, a 429 with Retry-After or a refused connection cannot be
provoked on demand from a real API server. The cluster tests (tests/operator) prove the wiring against a real
one; these prove the policy, path by path.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

import kopf
import pytest
import urllib3
from drishti_operator import drift, status_writer
from drishti_operator.indices import Indices
from drishti_operator.kube import PREVIOUS_OWNER, Verdict, classify
from drishti_operator.reconcile import REPORT_AFTER_RETRIES, _reconcile
from drishti_operator.runtime import Applied, Runtime
from kubernetes.client.exceptions import ApiException

KEY = ("ns", "cam")
LOGGER = logging.getLogger("test.api-errors")


def api_error(status: int, message: str = "nope", retry_after: str | None = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason Phrase")
    exc.body = json.dumps({"kind": "Status", "message": message})
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


REFUSED = urllib3.exceptions.MaxRetryError(None, "/apis", ConnectionRefusedError(111, "Connection refused"))
TIMED_OUT = urllib3.exceptions.ReadTimeoutError(None, "/apis", "Read timed out. (read timeout=60)")


class FakeKube:
    """The API client's three calls, in memory; each raises what `fail` holds for it, once set."""

    def __init__(self) -> None:
        self.fail: dict[str, BaseException] = {}
        self.applied: list[str] = []
        self.statuses: list[dict[str, Any]] = []
        self.camera: dict[str, Any] | None = None

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if "apply" in self.fail:
            raise self.fail["apply"]
        self.applied.append(obj["kind"])
        uid = f"{obj['kind'].lower()}-uid"
        return {**obj, "metadata": {**obj["metadata"], "uid": uid, "generation": 1, "resourceVersion": "7"}}

    async def get_camera(self, namespace: str, name: str) -> dict[str, Any] | None:
        if "get_camera" in self.fail:
            raise self.fail["get_camera"]
        return self.camera

    async def patch_camera_status(self, namespace: str, name: str,
                                  status: Mapping[str, Any]) -> dict[str, Any]:
        if "patch_camera_status" in self.fail:
            raise self.fail["patch_camera_status"]
        self.statuses.append(dict(status))
        return {"status": dict(status)}


def camera() -> dict[str, Any]:
    return {"apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera",
            "metadata": {"name": "cam", "namespace": "ns", "uid": "cam-uid", "generation": 3,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"source": "synthetic"}, "status": {}}


def setup() -> tuple[FakeKube, Runtime, Indices]:
    kube = FakeKube()
    runtime = Runtime(kube=kube)  # type: ignore[arg-type]
    indices = Indices(cameras={KEY: [camera()]}, deployments={}, pods={})  # type: ignore[arg-type]
    return kube, runtime, indices


# --- the classifier -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc,verdict,reason,delay", [
    (api_error(400), Verdict.REJECTED, "Rejected", 0.0),
    (api_error(422), Verdict.REJECTED, "Rejected", 0.0),
    (api_error(422, f"ownerReferences: {PREVIOUS_OWNER}"), Verdict.PREVIOUS_OWNER, "Rejected", 2.0),
    (api_error(401), Verdict.DENIED, "Unauthorized", 30.0),
    (api_error(403), Verdict.DENIED, "Forbidden", 30.0),
    (api_error(404), Verdict.GONE, "NotFound", 5.0),
    (api_error(409), Verdict.RETRY, "Conflict", 5.0),
    (api_error(429), Verdict.RETRY, "TooManyRequests", 5.0),
    (api_error(429, retry_after="12"), Verdict.RETRY, "TooManyRequests", 12.0),
    (api_error(500), Verdict.RETRY, "APIError", 5.0),
    (api_error(503), Verdict.RETRY, "APIError", 5.0),
    (REFUSED, Verdict.RETRY, "Unreachable", 5.0),
    (TIMED_OUT, Verdict.RETRY, "Unreachable", 5.0),
    (ConnectionRefusedError(111, "Connection refused"), Verdict.RETRY, "Unreachable", 5.0),
    (TimeoutError("timed out"), Verdict.RETRY, "Unreachable", 5.0),
], ids=["400", "422", "422-previous-owner", "401", "403", "404", "409", "429", "429-retry-after", "500",
        "503", "refused", "read-timeout", "os-refused", "os-timeout"])
def test_classify(exc: BaseException, verdict: Verdict, reason: str, delay: float) -> None:
    problem = classify(exc)
    assert problem is not None
    assert (problem.verdict, problem.reason, problem.delay) == (verdict, reason, delay)
    if isinstance(exc, ApiException):
        assert problem.status == exc.status
        assert problem.message.endswith("nope") or PREVIOUS_OWNER in problem.message  # the API server's words
    else:
        assert problem.status is None and problem.message.startswith("API server unreachable: ")


def test_routine_errors_are_the_ones_of_objects_going_away() -> None:
    statuses = (400, 401, 403, 404, 409, 422, 429, 500)
    routine = {status for status in statuses if classify(api_error(status)).routine}
    assert routine == {401, 403, 404, 409}
    assert not classify(REFUSED).routine


def test_message_without_a_status_body_is_the_reason_phrase() -> None:
    exc = ApiException(status=502, reason="Bad Gateway")
    exc.body = "<html>proxy error</html>"
    assert classify(exc).message == "Bad Gateway"


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), KeyError("uid"), ValueError("bad")])
def test_what_is_not_an_api_error_is_not_classified(exc: BaseException) -> None:
    assert classify(exc) is None


# --- the reconcile ------------------------------------------------------------------------------------------


def reconcile_with(fail: BaseException | None,
                   retry: int = 0) -> tuple[FakeKube, Runtime, BaseException | None]:
    kube, runtime, indices = setup()
    if fail is not None:
        kube.fail["apply"] = fail
    try:
        asyncio.run(_reconcile(runtime, indices, camera(), KEY, "create", LOGGER, retry=retry))
    except BaseException as exc:  # noqa: BLE001 - the outcome under test
        return kube, runtime, exc
    return kube, runtime, None


def test_reconcile_applies_both_children_and_remembers_them() -> None:
    kube, runtime, raised = reconcile_with(None)
    assert raised is None and kube.applied == ["Deployment", "Service"]
    assert runtime.applied[KEY] == Applied("cam-uid", 3, "deployment-uid", 1, "service-uid", "7")


@pytest.mark.parametrize("status", [400, 422])
def test_reconcile_rejected_child_is_degraded_and_not_retried(status: int) -> None:
    kube, runtime, raised = reconcile_with(api_error(status, "spec.ports[0].port: Invalid value"))
    assert isinstance(raised, kopf.PermanentError)
    assert str(raised) == "the API server rejected a child: spec.ports[0].port: Invalid value"
    [written] = kube.statuses
    degraded = {c["type"]: c for c in written["conditions"]}["Degraded"]
    assert written["phase"] == "Degraded" and written["observedGeneration"] == 3
    assert (degraded["reason"], degraded["message"]) == ("Rejected", "spec.ports[0].port: Invalid value")
    assert runtime.failures[KEY][0] == 3 and KEY not in runtime.applied


@pytest.mark.parametrize("status,reason", [(401, "Unauthorized"), (403, "Forbidden")])
def test_reconcile_denied_is_degraded_and_retried_slowly(status: int, reason: str) -> None:
    kube, runtime, raised = reconcile_with(api_error(status, "cannot patch deployments"))
    assert isinstance(raised, kopf.TemporaryError) and raised.delay == 30.0
    assert str(raised) == "not allowed: cannot patch deployments"
    assert [s["phase"] for s in kube.statuses] == ["Degraded"]
    assert {c["type"]: c for c in kube.statuses[0]["conditions"]}["Degraded"]["reason"] == reason
    assert KEY not in runtime.failures  # not the spec's fault: a reconcile of the same spec may succeed


def test_reconcile_waits_for_the_previous_cameras_children_to_go() -> None:
    kube, _, raised = reconcile_with(api_error(422, f"metadata.ownerReferences: {PREVIOUS_OWNER}"))
    assert isinstance(raised, kopf.TemporaryError) and raised.delay == 2.0
    assert "waiting for the garbage collector" in str(raised) and kube.statuses == []


@pytest.mark.parametrize("exc,delay,said", [
    (api_error(404, "namespaces \"ns\" not found"), 5.0, 'API error 404: namespaces "ns" not found'),
    (api_error(409, "conflict"), 5.0, "API error 409: conflict"),
    (api_error(429, "slow down", retry_after="9"), 9.0, "API error 429: slow down"),
    (api_error(500, "etcdserver: leader changed"), 5.0, "API error 500: etcdserver: leader changed"),
    (REFUSED, 5.0, "API server unreachable: "),
    (TIMED_OUT, 5.0, "API server unreachable: "),
], ids=["404", "409", "429", "500", "refused", "timeout"])
def test_reconcile_retries_transient_errors_without_touching_the_status(exc: BaseException, delay: float,
                                                                        said: str) -> None:
    kube, runtime, raised = reconcile_with(exc)
    assert isinstance(raised, kopf.TemporaryError) and raised.delay == delay
    assert str(raised).startswith(said)
    assert kube.statuses == [] and KEY not in runtime.failures and KEY not in runtime.applied


@pytest.mark.parametrize("status", [500, 504])
def test_a_5xx_that_outlasts_its_retries_is_reported_and_still_retried(status: int) -> None:
    exc = api_error(status, "Internal error occurred: quantities must match the regular expression")
    kube, runtime, raised = reconcile_with(exc, retry=REPORT_AFTER_RETRIES)
    assert isinstance(raised, kopf.TemporaryError) and raised.delay == 5.0
    [written] = kube.statuses
    degraded = {c["type"]: c for c in written["conditions"]}["Degraded"]
    assert written["phase"] == "Degraded" and degraded["reason"] == "APIError"
    assert degraded["message"] == "Internal error occurred: quantities must match the regular expression"
    assert KEY not in runtime.failures  # the same spec is retried: it may pass
    kube, _, earlier = reconcile_with(exc, retry=REPORT_AFTER_RETRIES - 1)
    assert isinstance(earlier, kopf.TemporaryError) and kube.statuses == []  # a blip is not reported


def test_a_status_the_api_server_refuses_too_leaves_the_reconciles_error() -> None:
    kube, runtime, indices = setup()
    kube.fail["apply"] = kube.fail["patch_camera_status"] = api_error(503, "etcdserver: request timed out")
    with pytest.raises(kopf.TemporaryError, match="API error 503"):
        asyncio.run(_reconcile(runtime, indices, camera(), KEY, "create", LOGGER, retry=REPORT_AFTER_RETRIES))


def test_a_429_is_never_the_cameras_problem() -> None:
    kube, _, raised = reconcile_with(api_error(429, "slow down"), retry=REPORT_AFTER_RETRIES + 5)
    assert isinstance(raised, kopf.TemporaryError) and kube.statuses == []


def test_reconcile_lets_a_bug_through() -> None:
    _, _, raised = reconcile_with(RuntimeError("a bug"))
    assert type(raised) is RuntimeError and str(raised) == "a bug"


# --- the drift repair ---------------------------------------------------------------------------------------


def repair_with(fail: dict[str, BaseException], cause: str, caplog: pytest.LogCaptureFixture) -> FakeKube:
    kube, runtime, _ = setup()
    kube.fail.update(fail)
    kube.camera = camera()
    applied = Applied("cam-uid", 3, "old-uid", 1, "service-uid", "7")
    with caplog.at_level(logging.INFO, LOGGER.name):
        asyncio.run(drift._repair(drift.DEPLOYMENT, runtime, camera(), applied, cause, LOGGER))
    if not fail:
        assert applied.deployment_uid == "deployment-uid"
    return kube


def test_repair_applies_the_child_again(caplog: pytest.LogCaptureFixture) -> None:
    kube = repair_with({}, "deleted", caplog)
    assert kube.applied == ["Deployment"]
    assert caplog.messages == ["Deployment deleted: restored"]


@pytest.mark.parametrize("exc,level", [
    (api_error(403, "namespace ns is being terminated"), logging.INFO),
    (api_error(404, "namespace ns not found"), logging.INFO),
    (api_error(409, "conflict"), logging.INFO),
    (api_error(422, "invalid"), logging.WARNING),
    (api_error(500, "boom"), logging.WARNING),
    (REFUSED, logging.WARNING),
], ids=["403", "404", "409", "422", "500", "refused"])
def test_repair_failures_are_logged_not_raised(exc: BaseException, level: int,
                                               caplog: pytest.LogCaptureFixture) -> None:
    kube = repair_with({"apply": exc}, "edited", caplog)
    [record] = caplog.records
    assert record.levelno == level and record.getMessage().startswith("Deployment edited: not restored: ")
    assert kube.applied == []


def test_repair_that_cannot_read_the_camera_says_so(caplog: pytest.LogCaptureFixture) -> None:
    kube = repair_with({"get_camera": api_error(500, "etcd down")}, "deleted", caplog)
    assert caplog.messages == ["Deployment deleted: cannot read the camera: etcd down"] and kube.applied == []


def test_repair_lets_a_bug_through(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        repair_with({"apply": RuntimeError("a bug")}, "edited", caplog)


# --- the status writer --------------------------------------------------------------------------------------


def refresh_with(exc: BaseException, caplog: pytest.LogCaptureFixture) -> Runtime:
    kube, runtime, indices = setup()
    runtime.status_delay = 0.0
    runtime.applied[KEY] = Applied("cam-uid", 3, "deployment-uid", 1, "service-uid", "7")
    kube.fail["patch_camera_status"] = exc
    with caplog.at_level(logging.INFO, LOGGER.name):
        runtime.pending.add(KEY)
        asyncio.run(status_writer._refresh(runtime, indices, KEY, LOGGER))
    assert KEY not in runtime.pending  # the next event schedules a new refresh
    return runtime


def test_status_of_a_camera_gone_is_not_written(caplog: pytest.LogCaptureFixture) -> None:
    runtime = refresh_with(api_error(404, "virtualcameras cam not found"), caplog)
    assert caplog.messages == [] and KEY not in runtime.written


@pytest.mark.parametrize("exc,said", [
    (api_error(403, "namespace ns is being terminated"), "namespace ns is being terminated"),
    (api_error(500, "boom"), "boom"),
    (REFUSED, "API server unreachable: "),
], ids=["403", "500", "refused"])
def test_status_write_failures_wait_for_the_next_event(exc: BaseException, said: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    runtime = refresh_with(exc, caplog)
    [record] = caplog.records
    assert record.levelno == logging.INFO and KEY not in runtime.written
    assert record.getMessage().startswith(f"status of ns/cam not written: {said}")


def test_status_write_bug_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    refresh_with(RuntimeError("a bug"), caplog)
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.getMessage() == "status refresh of ns/cam failed"
