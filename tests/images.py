"""Images a test builds with skaffold: removed afterwards, whatever tags skaffold gave them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.service.camera import REPO

REPOSITORIES = ("drishti/stream", "drishti/operator")
PRUNE_SH = REPO / "hack" / "docker" / "prune.sh"


def _tags() -> set[str]:
    """Tags of the project's repositories (`docker images` filters one repository at a time)."""
    tags: set[str] = set()
    for repository in REPOSITORIES:
        tags |= set(subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
                                   capture_output=True, text=True, check=True).stdout.split())
    return tags


@contextmanager
def removing_new_tags() -> Iterator[None]:
    """Removes the drishti/stream and drishti/operator tags that appear inside the block (skaffold tags each
    build by its inputs), then the project's images that are left without a tag (hack/docker/prune.sh)."""
    before = _tags()
    try:
        yield
    finally:
        new = sorted(_tags() - before)
        if new:
            subprocess.run(["docker", "image", "rm", *new], capture_output=True, check=False)
        subprocess.run([str(PRUNE_SH)], capture_output=True, check=False)
