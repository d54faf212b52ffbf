"""The operator's start and end: Kopf's settings, the API client and its credentials, the runtime state."""

from __future__ import annotations

import os
from typing import Any

import kopf

from drishti_operator.kopf_setup import MemoryDiffBaseStorage, configure_kopf
from drishti_operator.kube import Kube, connection_info, load_configuration
from drishti_operator.render import DEFAULT_IMAGE, IMAGE_ENV
from drishti_operator.runtime import Runtime

WORKERS_ENV = "DRISHTI_OPERATOR_WORKERS"
STATUS_DELAY_ENV = "DRISHTI_OPERATOR_STATUS_DELAY"


@kopf.on.startup()
async def startup(*, settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    configure_kopf(settings)
    workers = int(os.environ.get(WORKERS_ENV) or 8)
    try:
        configuration = load_configuration()
    except Exception as exc:  # no kubeconfig and not in a pod: nothing to retry
        raise kopf.PermanentError(f"no Kubernetes credentials: {exc}") from exc
    diffbase = settings.persistence.diffbase_storage
    memo.runtime = Runtime(
        kube=Kube(configuration, workers=workers),
        image=os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE,
        status_delay=float(os.environ.get(STATUS_DELAY_ENV) or 0.2),
        diffbase=diffbase if isinstance(diffbase, MemoryDiffBaseStorage) else None,
    )
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
async def cleanup(*, memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        for task in list(runtime.tasks):
            task.cancel()
        runtime.kube.close()
