"""What a test session leaves behind: containers, untagged images of the project, listening ports, processes.

`Baseline.take()` at the start of the session notes the time, the untagged images, the listening TCP ports and
this process's children; `Baseline.leftovers()` at its end names everything since that is still there:

- Docker containers created during the session, in any state (a kind cluster is a container too), and
  volumes created during the session (a container's anonymous ones, left when it is removed without `-v`);
- untagged (dangling) images that carry a project label (`io.drishti.*`) and were not untagged before: built
  during the session, or left without a tag by a rebuild (when Docker was not running at the start, only those
  created during the session can be told apart);
- TCP ports listening now that were not before (a control plane, a camera, a port-forward), and their owner;
- processes this session started that still run.

Nothing here removes anything: cleaning up is each test's and each script's job; this only names what they
missed. Docker is asked only when its socket answers. Docker work outside the session at the same time
(another test run, a build of yours) is named too: run the suite alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime

import psutil

PROJECT_LABEL_PREFIX = "io.drishti."


def _docker(*args: str) -> list[str] | None:
    """Lines of a docker command's output, or None when there is no engine to ask."""
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return result.stdout.splitlines() if result.returncode == 0 else None


def _created(text: str) -> float:
    """Seconds since the epoch of Docker's `CreatedAt` ("2026-11-30 11:35:14 +0000 UTC")."""
    return datetime.strptime(" ".join(text.split()[:3]), "%Y-%m-%d %H:%M:%S %z").timestamp()


def _listening() -> dict[int, str]:
    """Listening TCP ports and who holds them."""
    ports: dict[int, str] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            ports[conn.laddr.port] = _describe(conn.pid)
    return ports


def _describe(pid: int | None) -> str:
    if pid is None:
        return "unknown process"
    try:
        return f"pid {pid} {' '.join(psutil.Process(pid).cmdline())[:160]}"
    except psutil.Error:
        return f"pid {pid}"


def _dangling() -> list[dict[str, str]] | None:
    lines = _docker("images", "--filter", "dangling=true", "--no-trunc", "--format", "{{json .}}")
    return None if lines is None else [json.loads(line) for line in lines]


@dataclass
class Baseline:
    started: float
    ports: set[int]
    children: set[int] = field(default_factory=set)
    dangling: set[str] | None = None  # None: Docker did not answer at the start

    @classmethod
    def take(cls) -> Baseline:
        own = psutil.Process()
        dangling = _dangling()
        return cls(time.time(), set(_listening()), {child.pid for child in own.children(recursive=True)},
                   None if dangling is None else {row["ID"] for row in dangling})

    def leftovers(self) -> list[str]:
        return [*self._containers(), *self._volumes(), *self._images(), *self._ports(), *self._processes()]

    def _containers(self) -> list[str]:
        lines = _docker("ps", "-a", "--no-trunc", "--format", "{{json .}}") or []
        found = []
        for row in map(json.loads, lines):
            if _created(row["CreatedAt"]) >= self.started - 1:
                found.append(f"container {row['Names']} ({row['Image']}, {row['Status']})")
        return found

    def _volumes(self) -> list[str]:
        names = _docker("volume", "ls", "--quiet") or []
        found = []
        for name in names:
            inspected = _docker("volume", "inspect", "--format", "{{.CreatedAt}}", name)
            if inspected and datetime.fromisoformat(inspected[0]).timestamp() >= self.started - 1:
                found.append(f"volume {name}")
        return found

    def _images(self) -> list[str]:
        found = []
        for row in _dangling() or []:
            if self.dangling is not None and row["ID"] in self.dangling:
                continue
            if self.dangling is None and _created(row["CreatedAt"]) < self.started - 1:
                continue
            inspected = _docker("image", "inspect", "--format", "{{json .Config.Labels}}", row["ID"])
            labels = json.loads(inspected[0]) if inspected else None
            if labels and any(key.startswith(PROJECT_LABEL_PREFIX) for key in labels):
                title = labels.get("org.opencontainers.image.title", "?")
                found.append(f"untagged image {row['ID'][7:19]} ({title}, {row['Size']})")
        return found

    def _ports(self) -> list[str]:
        return [f"port {port} listening: {who}" for port, who in sorted(_listening().items())
                if port not in self.ports]

    def _processes(self) -> list[str]:
        found = []
        for child in psutil.Process().children(recursive=True):
            alive = child.is_running() and child.status() != psutil.STATUS_ZOMBIE
            if child.pid not in self.children and alive:
                found.append(f"process {_describe(child.pid)}")
        return found


def kept_on_purpose() -> bool:
    """The check is off: the developer keeps a cluster for inspection (DRISHTI_KIND_KEEP=1, see
    tests/kind/conftest.py), or other work on the machine opens ports meanwhile (DRISHTI_CHECK_LEFTOVERS=0,
    set by `make mutation`, whose hundreds of short runs would otherwise count a stranger's port as a
    kill)."""
    return os.environ.get("DRISHTI_KIND_KEEP") == "1" or os.environ.get("DRISHTI_CHECK_LEFTOVERS") == "0"
