from __future__ import annotations

import subprocess

import pytest

from tests.service.camera import REPO


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium, installed by the project's script when missing; a machine where it cannot be
    installed fails the browser test with the script's reason."""
    result = subprocess.run(
        [REPO / "hack" / "browser" / "chromium.sh"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"hack/browser/chromium.sh could not provide Chromium:\n{result.stderr}", pytrace=False)
    return result.stdout.strip().splitlines()[-1]
