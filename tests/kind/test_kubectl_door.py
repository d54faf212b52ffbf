"""The README's `kubectl apply` door on real nodes, its commands read from the README: the images built under
the manifests' tags and loaded with kind, the operator rolled out, the example camera Ready through its
readiness probe, and the probe command of the chart's NOTES (rendered by helm, not copied) passing from a pod
by Service name."""

from __future__ import annotations

import json
import re

import pytest

from tests import readme
from tests.chart.tools import CHART, MANIFESTS
from tests.kind.cameras import NOTES_PROBE, assert_probe_passes, sh

pytestmark = pytest.mark.timeout(900)

DOOR = readme.commands(readme.code_blocks("`kubectl apply`")[0])


def test_kubectl_apply_door_serves_the_example_camera(kind_cluster, kind_env, kubectl) -> None:
    assert any(line.startswith("kind load docker-image") for line in DOOR), DOOR
    images = re.findall(r"\bdrishti/(?:operator|stream):\S+", " ".join(DOOR))
    try:
        for command in DOOR:
            sh(command, kind_env, timeout=900)
        kubectl("-n", "default", "wait", "--for=condition=Ready", "vcam/lobby", "--timeout=180s", timeout=200)
        listing = sh(DOOR[-1], kind_env).stdout  # kubectl get vcam -n default
        assert re.search(r"^lobby\s.*True\s+ws://lobby\.default\.svc:8000/ws/stream", listing,
                         re.MULTILINE), listing

        pods = json.loads(kubectl("-n", "default", "get", "pods", "-l", "app.kubernetes.io/instance=lobby",
                                  "-o", "json").stdout)["items"]
        assert len(pods) == 1, pods
        container = pods[0]["spec"]["containers"][0]
        assert container["image"] == "drishti/stream:1.0.0" and container.get("readinessProbe"), container
        assert pods[0]["status"]["containerStatuses"][0]["ready"], pods[0]["status"]

        # what the chart prints after an install into this namespace with no cameras of its own: a probe of
        # lobby
        notes = sh(f"helm install drishti {CHART} --namespace default --dry-run=client", kind_env).stdout
        match = NOTES_PROBE.search(notes)
        assert match, notes
        command = f"{match.group(1)} {match.group(2)}"
        assert ("--image=drishti/stream:1.0.0" in command
                and "ws://lobby.default.svc:8000/ws/stream" in command)
        assert_probe_passes(command, "ws://lobby.default.svc:8000/ws/stream", kind_env)
    finally:
        kubectl("delete", "-n", "default", "-f", str(MANIFESTS / "examples" / "synthetic.yaml"),
                "--ignore-not-found", check=False)
        kubectl("delete", "-f", str(MANIFESTS / "operator.yaml"), "--ignore-not-found", "--wait=true",
                check=False, timeout=180)
        for image in images:  # the tags only: the :dev images share their layers
            sh(f"docker image rm {image}", kind_env, check=False)
