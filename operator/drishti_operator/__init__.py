"""The VirtualCamera operator: one camera Deployment and Service per `VirtualCamera` resource."""

import tomllib
from importlib import metadata
from pathlib import Path

GROUP = "drishti.io"
VERSION = "v1alpha1"
PLURAL = "virtualcameras"
KIND = "VirtualCamera"
MANAGER = "drishti-operator"


def _version() -> str:
    try:
        return metadata.version("drishti-stream")
    except metadata.PackageNotFoundError:  # a source tree that is not installed: read its pyproject
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"


__version__ = _version()
