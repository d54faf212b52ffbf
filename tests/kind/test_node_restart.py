"""`docker restart` of the node: the cluster, the operator and a camera come back Ready, and the camera's
frame ids carry on from its epoch. It disturbs everything on the node, so tests/kind/conftest.py runs it
last."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from hack.cluster.testing import wait_until
from tests.kind.cameras import apply_camera, probe_from_a_pod, wait_ready

pytestmark = pytest.mark.timeout(900)


def test_the_cluster_and_its_cameras_come_back_after_a_node_restart(operator, kind_cluster, kubectl,
                                                                     namespace) -> None:
    apply_camera(kubectl, namespace, "survivor")
    wait_ready(kubectl, namespace, "survivor")
    before = probe_from_a_pod(kubectl, namespace, "survivor")
    assert before["ok"], before

    t0 = time.monotonic()
    subprocess.run(["docker", "restart", kind_cluster.node], check=True, timeout=120)

    def node_ready() -> bool:
        nodes = kubectl("get", "nodes", "-o", "json", check=False, timeout=20)
        return nodes.returncode == 0 and all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
            for n in json.loads(nodes.stdout)["items"])

    wait_until(node_ready, timeout=300, interval=3, what="the node Ready after the restart")
    node_back = time.monotonic() - t0
    kubectl("-n", operator, "wait", "--for=condition=Available", "deployment", "-l",
            "app.kubernetes.io/component=operator", "--timeout=300s", timeout=320)
    attempts = iter(range(1000))

    def streams_again() -> dict | None:
        # by the Service's name, from a new pod: CoreDNS and kube-proxy are back
        report = probe_from_a_pod(kubectl, namespace, "survivor", pod=f"probe-{next(attempts)}", check=False)
        return report if report["ok"] else None

    after = wait_until(streams_again, timeout=300, interval=2,
                       what="a consumer pod streaming from the camera")
    camera_back = time.monotonic() - t0
    wait_ready(kubectl, namespace, "survivor")
    elapsed = after["first_frame_id"] - before["last_frame_id"]
    # the same epoch: ids moved on by the time that passed (15 fps), not back to zero
    assert elapsed > 0 and abs(elapsed / 15 - (camera_back + 2)) < 60, (before, after, camera_back)
    print(f"\n[node restart] node Ready after {node_back:.0f} s, "
          f"a consumer pod streaming after {camera_back:.0f} s; "
          f"frame ids {before['last_frame_id']} -> {after['first_frame_id']}")
