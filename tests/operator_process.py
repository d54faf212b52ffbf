"""The operator from the source tree as a subprocess, for the operator, chart and manifest tests."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from hack.cluster.testing import wait_until
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]


class OperatorProcess:
    """`python -m drishti_operator` in a subprocess, its log in a file, started once its liveness endpoint
    answers.

    It is configured by `env` and `args` alone: the test session's own DRISHTI_*, OTEL_* and KUBERNETES_*
    variables do not reach it. Liveness listens on a free loopback port, whatever `env` says. Status is
    written `status_delay` seconds after a child's event (None: the operator's own default), short for tests.
    """

    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ("--all-namespaces",), status_delay: float | None = 0.1) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.env = env or {}
        self.args = args
        self.status_delay = status_delay
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self.starts = 0

    @classmethod
    def like(cls, deployment: dict[str, Any], kubeconfig: Path, log: Path) -> OperatorProcess:
        """The operator configured as a rendered Deployment configures its container.

        Kubelet-less clusters (kwok) never run the operator's image, so the chart and manifest tests run the
        same program on the host, with the Deployment's environment and logged in as its ServiceAccount.
        """
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value", "") for item in container.get("env", [])}
        return cls(kubeconfig, log, env, args=())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("DRISHTI_", "OTEL_", "KUBERNETES_"))}
        env.update({
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": os.pathsep.join([str(REPO / "service"), str(REPO / "operator"), str(REPO)]),
            **self.env,
        })
        if self.status_delay is not None:
            env["DRISHTI_OPERATOR_STATUS_DELAY"] = str(self.status_delay)
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start #{self.starts} =====\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "drishti_operator", *self.args, "--log-format", "plain",
                 "--liveness", f"http://127.0.0.1:{self.port}/healthz"],
                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
            )
        wait_until(self._healthy, timeout=timeout, what=f"operator liveness (log: {self.log})")

    def _healthy(self) -> bool:
        if not self.running:
            raise RuntimeError(f"the operator exited with {self.proc.returncode if self.proc else None}:\n"
                               + self.tail())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
