"""The few Kubernetes API calls the reconcile makes, each in its own client span.

Children are written with server-side apply under one field manager, forced: the operator owns exactly the
fields it renders, an apply of an unchanged rendering changes nothing (no new generation, no rollout), and a
hand edit of a rendered field is taken back by the next apply. The official client is synchronous; calls run
in a bounded thread pool so that the event loop (Kopf's watches) never waits for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from drishti_operator import GROUP, MANAGER, PLURAL, VERSION, __version__
from drishti_operator.tracing import api_span

logger = logging.getLogger(__name__)
SLOW_CALL_S = 5.0  # API calls slower than this are logged, with their time in the queue and on the wire
APPLY = "application/apply-patch+yaml"  # JSON is YAML: `apply_body` sends JSON
MERGE = "application/merge-patch+json"
# What JSON leaves raw and a YAML document does not take as is: C1 controls (U+0085 it reads as a line break),
# DEL, U+FFFE and U+FFFF.
NOT_YAML = re.compile("[\x7f-\x9f\ufffe\uffff]")
APPLY_PATHS = {"Deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
               "Service": "/api/v1/namespaces/{namespace}/services/{name}"}
# The API server's words when a child would get a second controller (a camera deleted and created again).
PREVIOUS_OWNER = "Only one reference can have Controller set to true"


def load_configuration() -> client.Configuration:
    """The cluster's address and credentials: KUBECONFIG (or ~/.kube/config), else the pod's service
    account."""
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config(client_configuration=configuration)
    else:  # read KUBECONFIG now: the client library reads it once, when it is imported
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None,
                                client_configuration=configuration)
    return configuration


def connection_info(configuration: client.Configuration) -> dict[str, Any]:
    """The same credentials, as Kopf's own API client takes them (`kopf.ConnectionInfo` keyword arguments)."""
    header = configuration.get_api_key_with_prefix("BearerToken") \
        or configuration.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1]) if parts else (None, None)
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "username": configuration.username or None,
        "password": configuration.password or None,
        "scheme": scheme,
        "token": token,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }


class Kube:
    """Typed-enough access to the API for the reconcile: apply children, read and patch cameras."""

    def __init__(self, configuration: client.Configuration, workers: int = 8) -> None:
        configuration.connection_pool_maxsize = max(workers, configuration.connection_pool_maxsize or 0)
        self.api = client.ApiClient(configuration)
        self.api.user_agent = f"{MANAGER}/{__version__}"
        self.apps = client.AppsV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kube")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.api.close()

    async def _call(self, verb: str, kind: str, namespace: str, name: str,
                    method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        with api_span(verb, kind, namespace, name) as span:
            queued = time.monotonic()
            started: list[float] = []

            def call() -> dict[str, Any]:
                started.append(time.monotonic())
                return _json_of(method, *args, _preload_content=False, **kwargs)

            try:
                result = await asyncio.get_running_loop().run_in_executor(self.executor, call)
            finally:
                done = time.monotonic()
                if done - queued > SLOW_CALL_S:
                    waited = (started[0] if started else done) - queued
                    logger.info("slow API call: %s %s %s/%s took %.2fs (%.2fs waiting for a worker)",
                                verb, kind, namespace, name, done - queued, waited)
            span.set_attribute("http.response.status_code", 200)
            return result

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of a rendered child (Deployment or Service); returns the live object.

        A hand edit can leave a list split between two owners, e.g. a Service port whose number was changed:
        the apply would then add a second entry with the same name, which the API server refuses (422).
        In that case the rendered spec is first written with a JSON merge patch, which replaces lists
        whole, and then applied again; a rendering that is itself invalid still fails with the first error.
        """
        meta = obj["metadata"]
        patch = {"Deployment": self.apps.patch_namespaced_deployment,
                 "Service": self.core.patch_namespaced_service}[obj["kind"]]
        kind, namespace, name = obj["kind"], meta["namespace"], meta["name"]
        body = apply_body(obj)
        try:
            return await self._call("apply", kind, namespace, name, self._apply, kind, namespace, name, body)
        except ApiException as exc:
            if exc.status != 422:
                raise
            try:
                await self._call("patch", kind, namespace, name, patch, name, namespace,
                                 {"spec": obj["spec"]}, field_manager=MANAGER, _content_type=MERGE)
            except ApiException:
                raise exc from None
        return await self._call("apply", kind, namespace, name, self._apply, kind, namespace, name, body)

    def _apply(self, kind: str, namespace: str, name: str, body: bytes,
               _preload_content: bool = False) -> Any:
        """The apply request, with its body already serialized (see `apply_body`): the typed methods take
        only a dict, which the client serializes itself. Built as they build theirs (the 37 client's
        `param_serialize` and `call_api`). Returns the raw response, as they do with `_preload_content=False`;
        a refusal raises ApiException, as theirs."""
        method, url, headers, _body, _form = self.api.param_serialize(
            "PATCH", APPLY_PATHS[kind], path_params={"namespace": namespace, "name": name},
            query_params=[("fieldManager", MANAGER), ("force", True)],
            header_params={"Content-Type": APPLY, "Accept": "application/json"},
            auth_settings=["BearerToken"])
        response = self.api.call_api(method, url, headers, body=body)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response

    async def get_camera(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("get", "VirtualCamera", namespace, name,
                                    self.custom.get_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_camera_status(self, namespace: str, name: str,
                                  status: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("patch", "VirtualCamera/status", namespace, name,
                                self.custom.patch_namespaced_custom_object_status,
                                GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)},
                                _content_type=MERGE)


def apply_body(obj: Mapping[str, Any]) -> bytes:
    """An apply request's body: JSON (which is YAML) in UTF-8, as the API server's YAML decoder takes it.

    The client's own serialization escapes every character beyond ASCII, and one beyond U+FFFF as a surrogate
    pair, which that decoder refuses; raw, it refuses or changes the characters YAML does not take as they
    are (`NOT_YAML`): those, and only those, stay escaped. They can only be in strings.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return NOT_YAML.sub(lambda found: f"\\u{ord(found.group()):04x}", text).encode()


def _json_of(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = method(*args, **kwargs)
    try:
        body: dict[str, Any] = json.loads(response.data)
        return body
    finally:
        response.release_conn()


class Verdict(Enum):
    """What a failed API call means for the caller."""

    RETRY = "retry"  # transient: unreachable, timed out, throttled, conflicting or failing; try again later
    REJECTED = "rejected"  # the API server refuses what was sent (400, 422): the same request never succeeds
    DENIED = "denied"  # 401/403: credentials or RBAC, or a namespace being deleted; retried slowly
    GONE = "gone"  # 404: the object, or its namespace, is gone
    PREVIOUS_OWNER = "previous-owner"  # the children still belong to a deleted camera of the same name


@dataclass(frozen=True)
class ApiError:
    """A failed API call, classified: its verdict, a one-word reason for the status, the API server's
    words."""

    verdict: Verdict
    reason: str
    message: str
    delay: float  # seconds before a retry is worth it
    status: int | None = None  # the HTTP status; None when the API server was not reached

    @property
    def routine(self) -> bool:
        """Expected in a cluster's normal life (a namespace or object going away): worth INFO, not WARNING."""
        return self.verdict in (Verdict.GONE, Verdict.DENIED) or self.status == 409


REASONS = {400: "Rejected", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
           422: "Rejected", 429: "TooManyRequests"}
RETRY_DELAY_S = 5.0
DENIED_DELAY_S = 30.0
PREVIOUS_OWNER_DELAY_S = 2.0


def classify(exc: BaseException) -> ApiError | None:
    """The one policy for API errors: what `exc` means, or None when it is not an API error (a bug, say)."""
    if isinstance(exc, OSError | urllib3.exceptions.HTTPError):  # refused, reset, timed out: not reached
        return ApiError(Verdict.RETRY, "Unreachable", f"API server unreachable: {exc}", RETRY_DELAY_S)
    if not isinstance(exc, ApiException):
        return None
    status = int(exc.status or 0)
    reason, message = REASONS.get(status, "APIError"), message_of(exc)
    if status == 422 and PREVIOUS_OWNER in message:
        return ApiError(Verdict.PREVIOUS_OWNER, reason, message, PREVIOUS_OWNER_DELAY_S, status)
    if status in (400, 422):
        return ApiError(Verdict.REJECTED, reason, message, 0.0, status)
    if status in (401, 403):
        return ApiError(Verdict.DENIED, reason, message, DENIED_DELAY_S, status)
    if status == 404:
        return ApiError(Verdict.GONE, reason, message, RETRY_DELAY_S, status)
    return ApiError(Verdict.RETRY, reason, message, _retry_after(exc) or RETRY_DELAY_S, status)


def message_of(exc: ApiException) -> str:
    """The API server's own message (its Status object's), else the HTTP reason phrase."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason or exc)


def _retry_after(exc: ApiException) -> float | None:
    """The delay a throttling API server asks for (Retry-After, in seconds), if it asks."""
    try:
        return float((exc.headers or {}).get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
