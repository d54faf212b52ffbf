from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.service.camera import Camera, write_video


@pytest.fixture
def start_camera(tmp_path: Path) -> Iterator[Callable[..., Camera]]:
    """Starts real camera processes (settings as DRISHTI_* keyword arguments); stops them after the test."""
    cameras: list[Camera] = []

    def start(**settings: str) -> Camera:
        camera = Camera.start(tmp_path, **settings)
        cameras.append(camera)
        return camera

    yield start
    for camera in cameras:
        camera.stop()


@pytest.fixture(scope="session")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames at 10 fps, 320x240 MP4: two seconds, so loops happen within a test."""
    return write_video(tmp_path_factory.mktemp("videos") / "short.mp4", frames=20, fps=10)
