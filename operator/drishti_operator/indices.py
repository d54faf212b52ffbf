"""Kopf's in-memory indices of cameras, their Deployments and their pods: what handlers read, not the API.

Each index handler's name is the keyword under which Kopf passes its index to every handler; `Indices` gathers
the three, typed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from drishti_operator import GROUP, KIND, PLURAL, VERSION
from drishti_operator.render import INSTANCE_LABEL, MANAGED_LABELS
from drishti_operator.runtime import Key
from drishti_operator.status import DeploymentSummary, PodSummary, summarize_deployment, summarize_pod

CAMERAS = (GROUP, VERSION, PLURAL)
KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp", "deletionTimestamp", "labels")
CameraIndex = kopf.Index[Key, dict[str, Any]]
DeploymentIndex = kopf.Index[Key, DeploymentSummary]
PodIndex = kopf.Index[Key, PodSummary]


def compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a camera the operator needs, as plain data (no managedFields, no annotations)."""
    meta = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
        "kind": body.get("kind", KIND),
        "metadata": {key: _plain(meta.get(key)) for key in KEPT_METADATA if meta.get(key) is not None},
        "spec": _plain(body.get("spec") or {}),
        "status": _plain(body.get("status") or {}),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def key_of(body: Mapping[str, Any]) -> Key:
    """The camera a child belongs to: its namespace and its instance label."""
    meta = body.get("metadata", {})
    return meta.get("namespace", ""), (meta.get("labels") or {}).get(INSTANCE_LABEL, "")


@kopf.index(*CAMERAS)
async def cameras(*, namespace: str | None, name: str, body: kopf.Body,
                  **_: Any) -> dict[Key, dict[str, Any]]:
    return {(namespace or "", name): compact(body)}


@kopf.index("apps", "v1", "deployments", labels=MANAGED_LABELS)
async def camera_deployments(*, body: kopf.Body, **_: Any) -> dict[Key, DeploymentSummary] | None:
    key = key_of(body)
    return {key: summarize_deployment(body)} if key[1] else None


@kopf.index("pods", labels=MANAGED_LABELS)
async def camera_pods(*, body: kopf.Body, **_: Any) -> dict[Key, PodSummary] | None:
    key = key_of(body)
    return {key: summarize_pod(body)} if key[1] else None


@dataclass(frozen=True)
class Indices:
    """The three indices, from the handler's keyword arguments of the same names (see `of`)."""

    cameras: CameraIndex
    deployments: DeploymentIndex
    pods: PodIndex

    @classmethod
    def of(cls, cameras: CameraIndex | None, deployments: DeploymentIndex | None,
           pods: PodIndex | None) -> Indices:
        if cameras is None or deployments is None or pods is None:
            raise TypeError("Kopf passes every index to every handler: was an index handler renamed?")
        return cls(cameras, deployments, pods)

    def camera(self, key: Key) -> dict[str, Any] | None:
        return next(iter(self.cameras.get(key, ())), None)

    def live_camera(self, key: Key) -> dict[str, Any] | None:
        """The indexed camera, unless it is gone or going: its children are then the garbage collector's."""
        camera = self.camera(key)
        if camera is None or camera["metadata"].get("deletionTimestamp"):
            return None
        return camera

    def deployment(self, key: Key) -> DeploymentSummary | None:
        return next(iter(self.deployments.get(key, ())), None)

    def pod_list(self, key: Key) -> list[PodSummary]:
        return list(self.pods.get(key, ()))
