"""Fixtures of the in-process tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test's frame stores in a directory of its own, never in the developer's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DRISHTI_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DRISHTI_* variable nor PORT from the developer's shell, and no config.yaml of the clone: a settings
    test sees only what it sets."""
    for name in list(os.environ):
        if name.startswith("DRISHTI_") or name == "PORT":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
