"""`python -m drishti_operator`: version, namespaces, peering and liveness from flags or the environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from drishti_operator import __version__
from drishti_operator.__main__ import DEFAULT_LIVENESS, OPERATOR_EXTRA, parse_args

PROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]


def test_version_prints_the_package_version() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-m", "drishti_operator", "--version"], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == f"drishti-operator {__version__}"
    assert __version__ == PROJECT["version"]


def test_the_missing_dependency_guard_names_the_operator_extra() -> None:
    """The one-line message for a missing dependency covers exactly what the `operator` extra installs (the
    image without it proves the message: tests/e2e/test_images.py)."""
    requirements = PROJECT["optional-dependencies"]["operator"]
    extra = {re.split(r"[<>=!~\[ ;]", requirement)[0] for requirement in requirements}
    assert set(OPERATOR_EXTRA) == extra


def test_defaults_serve_all_namespaces_standalone(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRISHTI_OPERATOR_NAMESPACES", "DRISHTI_OPERATOR_PEERING", "DRISHTI_OPERATOR_LIVENESS"):
        monkeypatch.delenv(name, raising=False)
    args = parse_args([])
    assert args.all_namespaces and not args.namespaces
    assert args.peering is None and args.liveness == DEFAULT_LIVENESS


def test_namespaces_from_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRISHTI_OPERATOR_NAMESPACES", "site-a, site-b ,")
    args = parse_args([])
    assert args.namespaces == ["site-a", "site-b"] and not args.all_namespaces
    assert parse_args(["-n", "x"]).namespaces == ["x"]
    assert parse_args(["-A"]).all_namespaces


def test_peering_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRISHTI_OPERATOR_PEERING", "drishti")
    assert parse_args([]).peering == "drishti"
    assert parse_args(["--peering", "other"]).peering == "other"
