"""The children of a VirtualCamera, rendered by pure functions of its body: a Deployment and a Service.

Nothing here talks to the cluster, so every rule of the pod (its environment, probes, security context,
volumes) is unit-tested without one. The pod template carries a hash of itself (`HASH_ANNOTATION`): equal
specs render byte-equal templates, so applying them again rolls nothing; a real change rolls the pods once.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import kopf
from drishti_stream import store
from drishti_stream.settings import Settings, env_name
from pydantic import BaseModel, ValidationError, create_model

from drishti_operator import MANAGER
from drishti_operator.crd import spec_fields

DEFAULT_IMAGE = "drishti/stream:dev"
IMAGE_ENV = "DRISHTI_OPERATOR_CAMERA_IMAGE"
HASH_ANNOTATION = "drishti.io/pod-spec-hash"
CONTAINER = "camera"
PORT_NAME = "http"
CACHE_DIR = "/var/cache/drishti"
STORE_DIR = posixpath.join(CACHE_DIR, store.DIRECTORY)  # where the camera keeps its frame store
STORE_HEADROOM_MI = 64  # the store's header and index, beyond its frames' budget
GCS_DIR = "/var/run/secrets/drishti/gcs"
RUN_AS = 10001
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"memory": "768Mi"},
}
# The settings the operator decides itself (see crd.OPERATOR_MANAGED), as the pod receives them.
FIXED_ENV = {"host": "0.0.0.0", "cache_dir": CACHE_DIR, "log_format": "json"}


class InvalidSpec(ValueError):
    """A spec the camera would refuse: reported in the status, never retried until the spec changes."""


# Seconds a terminating pod keeps serving before SIGTERM (see the container's preStop hook).
PRE_STOP_SECONDS = 3

INSTANCE_LABEL = "app.kubernetes.io/instance"  # a child's camera: its name
MANAGED_LABELS = {"app.kubernetes.io/managed-by": MANAGER}


def selector_labels(name: str) -> dict[str, str]:
    """The labels that select a camera's pods; they never change for the life of the camera."""
    return {"app.kubernetes.io/name": "drishti-stream", INSTANCE_LABEL: name}


def labels(name: str) -> dict[str, str]:
    return {
        **selector_labels(name),
        "app.kubernetes.io/component": "camera",
        "app.kubernetes.io/part-of": "drishti",
        **MANAGED_LABELS,
    }


MANAGED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGER},app.kubernetes.io/name=drishti-stream"


def child_labels(camera: Mapping[str, Any]) -> dict[str, str]:
    """The labels every child of the camera carries (see `_owned`): the standard ones over the camera's."""
    return {**(camera["metadata"].get("labels") or {}), **labels(camera["metadata"]["name"])}


def label_selector(name: str) -> str:
    return ",".join(f"{key}={value}" for key, value in selector_labels(name).items())


def stream_url(name: str, namespace: str, port: int) -> str:
    return f"ws://{name}.{namespace}.svc:{port}/ws/stream"


def parse_time(stamp: str) -> datetime:
    """An RFC 3339 timestamp as the API server writes it (`2026-01-02T03:04:05Z`)."""
    return datetime.fromisoformat(stamp)


def epoch_of(camera: Mapping[str, Any]) -> float:
    """Unix time of frame 0: spec.epoch, else the camera's creation time (fixed for the camera's life)."""
    fixed = camera.get("spec", {}).get("epoch")
    if fixed is not None:
        return float(fixed)
    created = camera.get("metadata", {}).get("creationTimestamp")
    if not created:
        raise InvalidSpec("the camera has no creationTimestamp and no spec.epoch")
    return parse_time(created).timestamp()


def port_of(camera: Mapping[str, Any]) -> int:
    return int(camera.get("spec", {}).get("port", Settings.model_fields["port"].default))


def _settings_model() -> type[BaseModel]:
    """The camera's settings as a plain model: validation without reading the operator's own env or files."""
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in Settings.model_fields.items()}
    return create_model("CameraSettings", **fields)


_CameraSettings = _settings_model()


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def camera_settings(camera: Mapping[str, Any]) -> dict[str, Any]:
    """Settings field -> value for the pod: the spec's settings (defaults filled in), epoch and name resolved.

    Raises InvalidSpec when the camera would refuse the values, with the setting and the reason.
    """
    spec = camera.get("spec", {})
    values: dict[str, Any] = {}
    for spec_name, field in spec_fields().items():
        value = spec.get(spec_name, Settings.model_fields[field].default)
        if value is not None:
            values[field] = value
    values["epoch"] = epoch_of(camera)
    values["name"] = camera["metadata"]["name"]
    volume = spec.get("volume")
    if volume and not posixpath.isabs(values["video_path"]):
        values["video_path"] = posixpath.join(volume.get("mountPath", "/videos"), values["video_path"])
    try:
        _CameraSettings.model_validate({**values, **FIXED_ENV})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        raise InvalidSpec(f"{env_name(field)}={error.get('input')!r}: {error['msg']}") from None
    return values


def camera_env(camera: Mapping[str, Any]) -> list[dict[str, str]]:
    """The DRISHTI_* environment of a camera pod, in the settings model's order (unset settings are
    omitted), then the standard variables of its Google credentials and its trace exporter, when the spec
    names them."""
    values = {**camera_settings(camera), **FIXED_ENV}
    env = [{"name": env_name(field), "value": _env_value(values[field])}
           for field in Settings.model_fields if field in values]
    gcs = camera.get("spec", {}).get("gcsCredentials")
    if gcs:
        env.append({"name": "GOOGLE_APPLICATION_CREDENTIALS",
                    "value": posixpath.join(GCS_DIR, gcs.get("key", "key.json"))})
    otlp = (camera.get("spec", {}).get("tracing") or {}).get("otlpEndpoint")
    if otlp:
        env.append({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": otlp})
    return env


def _resources(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    given = spec.get("resources") or {}
    return {kind: {key: str(value) for key, value in (given.get(kind) or default).items()}
            for kind, default in DEFAULT_RESOURCES.items()}


def _store_volume(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The frame store's volume: the claim the spec names, else an emptyDir that fits its budget."""
    claim = (spec.get("store") or {}).get("claimName")
    if claim:
        return {"name": "frames", "persistentVolumeClaim": {"claimName": claim}}
    budget = int(spec.get("cacheBudgetMb", Settings.model_fields["cache_budget_mb"].default))
    return {"name": "frames", "emptyDir": {"sizeLimit": f"{budget + STORE_HEADROOM_MI}Mi"}}


def _volumes(spec: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "cache", "emptyDir": {}},
        _store_volume(spec),
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "cache", "mountPath": CACHE_DIR},
        {"name": "frames", "mountPath": STORE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volume = spec.get("volume")
    if volume:
        own = {posixpath.normpath(m["mountPath"]): m["name"] for m in mounts}
        path = posixpath.normpath(volume.get("mountPath", "/videos"))
        if path in own:
            raise InvalidSpec(f"volume.mountPath {path} is where the camera's own {own[path]} volume is "
                              "mounted: choose another path")
        volumes.append({"name": "video",
                        "persistentVolumeClaim": {"claimName": volume["claimName"], "readOnly": True}})
        mount = {"name": "video", "mountPath": volume.get("mountPath", "/videos"), "readOnly": True}
        if volume.get("subPath"):
            mount["subPath"] = volume["subPath"]
        mounts.append(mount)
    gcs = spec.get("gcsCredentials")
    if gcs:
        volumes.append({"name": "gcs-credentials",
                        "secret": {"secretName": gcs["secretName"], "defaultMode": 0o440}})
        mounts.append({"name": "gcs-credentials", "mountPath": GCS_DIR, "readOnly": True})
    return volumes, mounts


def pod_spec_hash(template: Mapping[str, Any]) -> str:
    """A short, stable digest of a pod template (its own hash annotation excluded)."""
    clean = json.loads(json.dumps(template))
    clean.get("metadata", {}).get("annotations", {}).pop(HASH_ANNOTATION, None)
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def pod_template(camera: Mapping[str, Any], *, default_image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    name = camera["metadata"]["name"]
    spec = camera.get("spec", {})
    volumes, mounts = _volumes(spec)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": spec.get("image") or default_image,
        "ports": [{"name": PORT_NAME, "containerPort": port_of(camera), "protocol": "TCP"}],
        "env": camera_env(camera),
        "readinessProbe": {"httpGet": {"path": "/ready", "port": PORT_NAME},
                           "periodSeconds": 2, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health", "port": PORT_NAME},
                          "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3},
        "resources": _resources(spec),
        # the camera writes why it could not start to /dev/termination-log; anything else that kills it, the
        # log's end
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # A pod being replaced keeps serving while kube-proxy and the endpoints learn that it is going; then
        # SIGTERM closes its clients with 1001 and they reconnect, through the Service, to a Ready pod.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    if spec.get("imagePullPolicy"):
        container["imagePullPolicy"] = spec["imagePullPolicy"]
    template: dict[str, Any] = {
        "metadata": {"labels": labels(name), "annotations": {}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": PRE_STOP_SECONDS + 10,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUN_AS,
                "runAsGroup": RUN_AS,
                "fsGroup": RUN_AS,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }
    template["metadata"]["annotations"][HASH_ANNOTATION] = pod_spec_hash(template)
    return template


def _owned(child: dict[str, Any], camera: Mapping[str, Any]) -> dict[str, Any]:
    # ownerReference (controller), namespace, the camera's labels
    kopf.adopt(child, owner=kopf.Body(cast(kopf.RawBody, camera)))
    return child


def render_deployment(camera: Mapping[str, Any], *, default_image: str = DEFAULT_IMAGE) -> dict[str, Any]:
    name = camera["metadata"]["name"]
    spec = camera.get("spec", {})
    return _owned({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": camera["metadata"]["namespace"], "labels": labels(name)},
        "spec": {
            "replicas": int(spec.get("replicas", 1)),
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": 120,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": selector_labels(name)},
            "template": pod_template(camera, default_image=default_image),
        },
    }, camera)


def render_service(camera: Mapping[str, Any]) -> dict[str, Any]:
    name = camera["metadata"]["name"]
    return _owned({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": camera["metadata"]["namespace"], "labels": labels(name)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [{"name": PORT_NAME, "port": port_of(camera), "targetPort": PORT_NAME,
                       "protocol": "TCP"}],
        },
    }, camera)


def render(camera: Mapping[str, Any], *,
           default_image: str = DEFAULT_IMAGE) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both children of a camera: (Deployment, Service). Raises InvalidSpec for a spec the camera would
    refuse."""
    return render_deployment(camera, default_image=default_image), render_service(camera)
