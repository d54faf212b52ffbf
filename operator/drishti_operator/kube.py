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
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from drishti_operator import GROUP, MANAGER, PLURAL, VERSION, __version__
from drishti_operator.tracing import api_span

logger = logging.getLogger(__name__)
SLOW_CALL_S = 5.0  # API calls slower than this are logged, with their time in the queue and on the wire
APPLY = "application/apply-patch+yaml"  # JSON is YAML: the client sends the dict as JSON
MERGE = "application/merge-patch+json"


def load_configuration() -> client.Configuration:
    """The cluster's address and credentials: KUBECONFIG (or ~/.kube/config), else the pod's service account."""
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
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
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
        try:
            return await self._call("apply", kind, namespace, name, patch, name, namespace, dict(obj),
                                    field_manager=MANAGER, force=True, _content_type=APPLY)
        except ApiException as exc:
            if exc.status != 422:
                raise
            try:
                await self._call("patch", kind, namespace, name, patch, name, namespace, {"spec": obj["spec"]},
                                 field_manager=MANAGER, _content_type=MERGE)
            except ApiException:
                raise exc from None
        return await self._call("apply", kind, namespace, name, patch, name, namespace, dict(obj),
                                field_manager=MANAGER, force=True, _content_type=APPLY)

    async def get_camera(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("get", "VirtualCamera", namespace, name,
                                    self.custom.get_namespaced_custom_object,
                                    GROUP, VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    async def patch_camera_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("patch", "VirtualCamera/status", namespace, name,
                                self.custom.patch_namespaced_custom_object_status,
                                GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)},
                                _content_type=MERGE)


def _json_of(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = method(*args, **kwargs)
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()
