"""The operator overrides one private hook of Kopf: `AnnotationsProgressStorage._store_marker`, which writes
the `<prefix>/kopf-managed` marker into a camera's first patch (see kopf_setup.UnmarkedProgressStorage). A
Kopf release that renames or stops calling it must fail here, naming it, rather than as one extra patch per
new camera that no test counts. pyproject.toml bounds kopf to the releases checked this way.
"""

from __future__ import annotations

import inspect

import kopf
from drishti_operator import GROUP
from drishti_operator.kopf_setup import UnmarkedProgressStorage

MARKER = f"{GROUP}/kopf-managed"
HOOK = "kopf.AnnotationsProgressStorage._store_marker(prefix, patch, body)"


def stored(storage: kopf.AnnotationsProgressStorage) -> dict[str, str]:
    """The annotations a handler's first progress record puts in the patch of a fresh camera."""
    body = kopf.Body({"metadata": {"name": "cam", "namespace": "ns", "uid": "u1", "annotations": {}}})
    patch = kopf.Patch()
    storage.store(key=kopf.HandlerId("reconcile"), record={"started": "2026-01-01T00:00:00Z", "retries": 1},
                  body=body, patch=patch)
    return dict(patch.get("metadata", {}).get("annotations", {}))


def test_kopf_still_has_the_marker_hook_the_operator_overrides() -> None:
    hook = getattr(kopf.AnnotationsProgressStorage, "_store_marker", None)
    assert hook is not None, f"Kopf no longer has {HOOK}: update kopf_setup.UnmarkedProgressStorage"
    assert list(inspect.signature(hook).parameters) == ["self", "prefix", "patch", "body"], \
        f"Kopf changed the signature of {HOOK}: {inspect.signature(hook)}"


def test_kopf_writes_the_marker_through_the_hook() -> None:
    annotations = stored(kopf.AnnotationsProgressStorage(prefix=GROUP))
    assert annotations.get(MARKER) == "yes", \
        f"Kopf no longer writes {MARKER} through {HOOK}: the override in kopf_setup may be dead code"


def test_the_operator_stores_progress_without_the_marker() -> None:
    annotations = stored(UnmarkedProgressStorage(prefix=GROUP))
    assert MARKER not in annotations
    assert any(key.startswith(f"{GROUP}/reconcile") for key in annotations), annotations  # progress is kept
