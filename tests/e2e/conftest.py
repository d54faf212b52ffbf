"""End-to-end fixtures: the delivery tools (built from the Go module proxy by hack/delivery/tools.sh, cached per
machine) and the Docker engine (hack/docker/engine.sh).

    skaffold_bin, compose_bin, helm3_bin, kind_bin   session   pathlib.Path of the tool (built if missing)
    docker_engine                                     session   None; skips with engine.sh's reason if Docker cannot run

Like the control plane, a missing tool is built right after collection, before the first test, so a cold build
(minutes) never counts against a test's timeout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.chart.tools import REPO

TOOLS_SH = REPO / "hack" / "delivery" / "tools.sh"
ENGINE_SH = REPO / "hack" / "docker" / "engine.sh"
TOOL_FIXTURES = {"skaffold_bin": "skaffold", "compose_bin": "compose", "helm3_bin": "helm3", "kind_bin": "kind"}


def cached(tool: str) -> Path | None:
    result = subprocess.run([str(TOOLS_SH), "--path", tool], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def ensure(tool: str) -> Path:
    result = subprocess.run([str(TOOLS_SH), tool], stdout=subprocess.PIPE, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"hack/delivery/tools.sh {tool} failed (exit {result.returncode}); see its output above")
    return Path(result.stdout.strip().splitlines()[-1])


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    wanted = {TOOL_FIXTURES[name] for item in session.items
              for name in getattr(item, "fixturenames", ()) if name in TOOL_FIXTURES}
    missing = sorted(tool for tool in wanted if cached(tool) is None)
    if not missing:
        return
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[delivery] selected tests need {', '.join(missing)}, not built yet: building them now with "
              "hack/delivery/tools.sh (once per machine)", flush=True)
        for tool in missing:
            ensure(tool)


@pytest.fixture(scope="session")
def skaffold_bin() -> Path:
    return cached("skaffold") or ensure("skaffold")


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """The compose plugin; tools.sh also links it where `docker compose` finds it."""
    return ensure("compose")


@pytest.fixture(scope="session")
def helm3_bin() -> Path:
    return cached("helm3") or ensure("helm3")


@pytest.fixture(scope="session")
def kind_bin() -> Path:
    return cached("kind") or ensure("kind")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A running Docker engine (installed and started by hack/docker/engine.sh when needed), else a skip that
    says exactly why Docker cannot run here."""
    try:
        result = subprocess.run([str(ENGINE_SH)], capture_output=True, text=True, check=False, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("hack/docker/engine.sh did not get a Docker engine running within 600 s")
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        pytest.skip("no Docker engine: hack/docker/engine.sh exited with "
                    f"{result.returncode}: {' / '.join(reason)}")
