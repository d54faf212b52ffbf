"""docker-compose.yml: valid for `docker compose config` (the Compose v2 plugin, built by
hack/delivery/tools.sh), and `docker compose up` runs a camera for real: the synthetic default, then a video
from the ./data mount.

Each run uses a copy of the file in a temporary directory, so that ./data is the test's own, not the work
tree's.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.chart.tools import REPO, run
from tests.e2e.test_images import write_clip
from tests.ports import free_port

COMPOSE_FILE = REPO / "docker-compose.yml"


def compose(directory: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout=180):
    return run(["docker", "compose", *args], env={**os.environ, **(env or {})}, cwd=directory, check=check,
               timeout=timeout)


@pytest.fixture
def project(tmp_path) -> Path:
    shutil.copy(COMPOSE_FILE, tmp_path / "docker-compose.yml")
    (tmp_path / "data").mkdir(mode=0o755)
    return tmp_path


def test_compose_config_defaults(compose_bin, project) -> None:
    assert "version v2." in run(["docker", "compose", "version"]).stdout
    rendered = json.loads(compose(project, "config", "--format", "json").stdout)
    camera = rendered["services"]["camera"]
    assert camera["image"] == "drishti/stream:dev"
    assert camera["environment"]["DRISHTI_VIDEO_PATH"] == "synthetic"
    assert [(p["target"], p["published"]) for p in camera["ports"]] == [(8000, "8000")]
    (volume,) = camera["volumes"]
    assert (volume["source"], volume["target"], volume["read_only"]) == (str(project / "data"), "/data", True)
    assert "/ready" in " ".join(camera["healthcheck"]["test"])
    assert camera["cap_drop"] == ["ALL"]


def test_compose_config_takes_the_environment_and_a_dotenv(compose_bin, project) -> None:
    env = {"DRISHTI_VIDEO_PATH": "/data/crowd.mp4", "DRISHTI_FPS": "15", "DRISHTI_HOST_PORT": "18000"}
    camera = json.loads(compose(project, "config", "--format", "json", env=env).stdout)["services"]["camera"]
    assert camera["environment"]["DRISHTI_VIDEO_PATH"] == "/data/crowd.mp4"
    assert camera["environment"]["DRISHTI_FPS"] == "15"
    assert camera["ports"][0]["published"] == "18000"
    # the .env example of the file's header
    header = [line[2:] for line in COMPOSE_FILE.read_text().splitlines() if line.startswith("#   DRISHTI_")]
    (project / ".env").write_text("\n".join(header) + "\n")
    camera = json.loads(compose(project, "config", "--format", "json").stdout)["services"]["camera"]
    assert camera["environment"]["DRISHTI_VIDEO_PATH"] == "/data/crowd.mp4"


def test_compose_config_refuses_a_broken_file(compose_bin, project) -> None:
    text = yaml.safe_load(COMPOSE_FILE.read_text())
    text["services"]["camera"]["healthcheck"]["intervall"] = "5s"
    (project / "docker-compose.yml").write_text(yaml.safe_dump(text))
    result = compose(project, "config", "--quiet", check=False)
    assert result.returncode != 0 and "intervall" in result.stderr


@pytest.fixture
def up(compose_bin, images, project) -> Iterator:
    """`docker compose up -d --wait` in the project directory; `down` afterwards."""
    name = f"drishti-e2e-{secrets.token_hex(3)}"
    started: list[dict[str, str]] = []

    def start(**env: str) -> int:
        port = free_port()
        full = {"DRISHTI_HOST_PORT": str(port), **env}
        started.append(full)
        result = compose(project, "-p", name, "up", "-d", "--wait", "--wait-timeout", "90", env=full,
                         check=False)
        if result.returncode != 0:
            logs = compose(project, "-p", name, "logs", env=full, check=False)
            raise AssertionError(f"docker compose up failed:\n{result.stderr}\n{logs.stdout}{logs.stderr}")
        return port
    start.project = name  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for env in started[-1:]:
            compose(project, "-p", name, "down", "--timeout", "5", env=env, check=False)


def probe(port: int) -> dict:
    result = run([REPO / ".venv" / "bin" / "drishti-stream", "probe", f"ws://127.0.0.1:{port}/ws/stream",
                  "--seconds", "3", "--json"], check=False, timeout=60)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["ok"], result.stdout + result.stderr
    return report


@pytest.mark.docker
def test_compose_up_runs_the_synthetic_camera(up, project) -> None:
    port = up()
    status = compose(project, "-p", up.project, "ps", env={"DRISHTI_HOST_PORT": str(port)}).stdout
    assert "(healthy)" in status, status
    report = probe(port)
    assert report["resolution"] == [1280, 720]


@pytest.mark.docker
def test_compose_up_plays_a_video_from_the_data_mount(up, project) -> None:
    write_clip(project / "data" / "clip.mp4")
    port = up(DRISHTI_VIDEO_PATH="/data/clip.mp4", DRISHTI_FPS="10")
    report = probe(port)
    assert report["resolution"] == [320, 240]
    assert report["fps_declared"] == 10
