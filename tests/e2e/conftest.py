"""End-to-end fixtures: the delivery tools (built from the Go module proxy by hack/delivery/tools.sh, cached
per machine) and the Docker engine (hack/docker/engine.sh).

    skaffold_bin, compose_bin, helm3_bin, kind_bin   session   pathlib.Path of the tool (built if missing)
    docker_engine                                     session   None; fails with engine.sh's reason if Docker
                                                                cannot run
    images                                            session   {"service": ref, "operator": ref}, built by
                                                                hack/docker/build-images.sh

Like the control plane, a missing tool and the images are built right after collection, before the first test,
so a cold build (minutes) never counts against a test's timeout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.chart.tools import REPO

TOOLS_SH = REPO / "hack" / "delivery" / "tools.sh"
ENGINE_SH = REPO / "hack" / "docker" / "engine.sh"
BUILD_IMAGES_SH = REPO / "hack" / "docker" / "build-images.sh"
TOOL_FIXTURES = {"skaffold_bin": "skaffold", "compose_bin": "compose", "helm3_bin": "helm3",
                 "kind_bin": "kind"}


def cached(tool: str) -> Path | None:
    result = subprocess.run([str(TOOLS_SH), "--path", tool], capture_output=True, text=True, check=False)
    return Path(result.stdout.strip()) if result.returncode == 0 else None


def ensure(tool: str) -> Path:
    result = subprocess.run([str(TOOLS_SH), tool], stdout=subprocess.PIPE, text=True, check=False,
                            timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"hack/delivery/tools.sh {tool} failed (exit {result.returncode}); "
                           "see its output above")
    return Path(result.stdout.strip().splitlines()[-1])


_built: dict[str, object] = {}


def build_images() -> dict[str, str] | str:
    """Both images, built (or found up to date) by hack/docker/build-images.sh: {target: ref}, or why not."""
    if "images" not in _built:
        try:
            result = subprocess.run([str(BUILD_IMAGES_SH)], capture_output=True, text=True, check=False,
                                    timeout=3600)
        except subprocess.TimeoutExpired:
            _built["images"] = "hack/docker/build-images.sh did not finish within 3600 s"
        else:
            if result.returncode != 0:
                _built["images"] = (f"hack/docker/build-images.sh exited with {result.returncode}:\n"
                                    + "\n".join(result.stderr.splitlines()[-15:]))
            else:
                refs = result.stdout.split()
                _built["images"] = {"operator": next(r for r in refs if "operator" in r),
                                    "service": next(r for r in refs if "operator" not in r)}
    return _built["images"]  # type: ignore[return-value]


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    names = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    missing = sorted(TOOL_FIXTURES[name] for name in names & set(TOOL_FIXTURES)
                     if cached(TOOL_FIXTURES[name]) is None)
    capture = session.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        if missing:
            print(f"\n[delivery] selected tests need {', '.join(missing)}, not built yet: "
                  "building them now with hack/delivery/tools.sh (once per machine)", flush=True)
            for tool in missing:
                try:
                    ensure(tool)
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:  # the tests using it fail
                    print(f"[delivery] {exc}", flush=True)
        if "images" in names:
            print("\n[delivery] building the images (hack/docker/build-images.sh; seconds when cached)",
                  flush=True)
            images = build_images()
            if isinstance(images, str):
                print(f"[delivery] {images}", flush=True)


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


def _no_docker(reason: str) -> None:
    """Without Docker the image tests cannot run: they fail with engine.sh's reason, on every machine (a skip
    would let `make test` report success without them)."""
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A running Docker engine (installed and started by hack/docker/engine.sh when needed)."""
    try:
        result = subprocess.run([str(ENGINE_SH)], capture_output=True, text=True, check=False, timeout=600)
    except subprocess.TimeoutExpired:
        _no_docker("hack/docker/engine.sh did not get a Docker engine running within 600 s")
        return
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        _no_docker(f"no Docker engine: hack/docker/engine.sh exited with {result.returncode}: "
                   f"{' / '.join(reason)}")


@pytest.fixture(scope="session")
def images(docker_engine) -> dict[str, str]:
    built = build_images()
    if isinstance(built, str):
        pytest.fail(built)
    return built
