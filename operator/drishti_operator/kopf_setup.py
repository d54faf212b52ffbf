"""How Kopf is set up for this operator: its storages, its settings, and the noise left out of its log."""

from __future__ import annotations

import logging

import kopf

from drishti_operator import GROUP
from drishti_operator.render import MANAGED_SELECTOR

# The handlers whose every success Kopf would log (see QuietChildEvents).
CHILD_EVENT_HANDLERS = ("deployment_event", "service_event", "pod_event", "camera_event")


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
    lets other Kopf operators recognise these annotations; Kopf itself knows its prefix. `_store_marker` is
    Kopf's private hook for it: tests/unit/test_kopf_internals.py fails, naming it, if a release drops it."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        return None


class QuietChildEvents(logging.Filter):
    """Drops Kopf's "Handler '..._event' succeeded." lines: one per child event, thousands in a burst, and
    saying nothing (a repair or a failure is logged on its own)."""

    NOISE = frozenset(f"Handler '{name}' succeeded." for name in CHILD_EVENT_HANDLERS)

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
    objects = logging.getLogger("kopf.objects")
    if not any(isinstance(f, QuietChildEvents) for f in objects.filters):
        objects.addFilter(QuietChildEvents())
