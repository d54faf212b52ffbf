"""The README's `helm install` door on real nodes, its commands read from the README.

The operator's pod is Ready through probes the kubelet ran; the camera of `cameras:` serves; the probe command
the chart's NOTES print passes from a pod, by the camera's Service name (CoreDNS, kube-proxy); `helm test`
runs its Job; the README's Python consumer receives frames in a pod.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hack.cluster.testing import wait_until
from tests import readme
from tests.kind.cameras import NOTES_PROBE, assert_probe_passes, sh
from tests.kind.pods import run_pod

pytestmark = pytest.mark.timeout(900)

INSTALL, GET_CAMERAS, HELM_TEST, UNINSTALL = readme.commands(readme.code_blocks("`helm install`")[0])
(CONSUMER,) = readme.code_blocks("Consuming a camera in the cluster", "python")
NAMESPACE = "drishti-system"


@pytest.fixture(scope="module")
def release(kind_cluster, kind_env, kubectl) -> Iterator[str]:
    """The README's install; yields what helm printed (the NOTES); the README's uninstall afterwards."""
    installed = sh(INSTALL, kind_env)
    try:
        kubectl("-n", NAMESPACE, "rollout", "status", "deployment/drishti-operator", "--timeout=180s",
                timeout=200)
        kubectl("-n", NAMESPACE, "wait", "--for=condition=Ready", "vcam/lobby", "--timeout=180s", timeout=200)
        yield installed.stdout
    finally:
        sh(UNINSTALL, kind_env, check=False)
        kubectl("-n", NAMESPACE, "wait", "--for=delete", "pods", "--all", "--timeout=120s", check=False,
                timeout=150)


def test_operator_is_ready_through_probes_the_kubelet_ran(release, kind_cluster, kubectl) -> None:
    listed = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=operator",
                                "-o", "json").stdout)["items"]
    # an operator pod of an earlier release in this namespace may still be terminating: not this release's
    pods = [p for p in listed if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 1, [p["metadata"]["name"] for p in listed]
    pod = pods[0]
    container = pod["spec"]["containers"][0]
    assert container.get("livenessProbe") and container.get("readinessProbe"), container
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and "running" in status["state"] and status["restartCount"] == 0, status
    # the kubelet's own count of the probes it ran against this pod, by result (the liveness probe's first run
    # comes after its initialDelaySeconds)
    node, name = pod["spec"]["nodeName"], pod["metadata"]["name"]
    delay = (container["livenessProbe"].get("initialDelaySeconds", 0)
             + container["livenessProbe"]["periodSeconds"])

    def probes() -> dict[tuple[str, str], float]:
        metrics = kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics/probes").stdout
        return {(s.labels["probe_type"], s.labels["result"]): s.value
                for family in text_string_to_metric_families(metrics) if family.name == "prober_probe"
                for s in family.samples if s.name == "prober_probe_total" and s.labels.get("pod") == name}

    counts = wait_until(lambda: (c := probes()).get(("Liveness", "successful")) and c, timeout=delay + 30,
                        interval=2, what=f"a successful liveness probe of {name}")
    assert counts.get(("Readiness", "successful"), 0) >= 1, counts
    assert not counts.get(("Liveness", "failed")), counts


def test_camera_pod_is_ready_and_vcam_shows_its_url(release, kind_env, kubectl) -> None:
    listing = sh(GET_CAMERAS, kind_env).stdout
    (row,) = [line.split() for line in listing.splitlines() if line.startswith("lobby ")]
    assert "True" in row and f"ws://lobby.{NAMESPACE}.svc:8000/ws/stream" in row, listing
    pods = json.loads(kubectl("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/instance=lobby",
                              "-o", "json").stdout)["items"]
    assert pods and all(s["ready"] for p in pods for s in p["status"]["containerStatuses"]), pods


def test_the_notes_probe_command_passes_by_service_name(release, kind_env) -> None:
    match = NOTES_PROBE.search(release)
    assert match, f"no probe command in the NOTES:\n{release}"
    command = f"{match.group(1)} {match.group(2)}"
    assert f"ws://lobby.{NAMESPACE}.svc:8000/ws/stream" in command
    assert_probe_passes(command, f"ws://lobby.{NAMESPACE}.svc:8000/ws/stream", kind_env)
    # the same command against a name no Service has fails: the pass above is the camera's, not kubectl's
    missing = sh(command.replace("lobby.", "nowhere.").replace("run probe", "run probe-missing"), kind_env,
                 timeout=180, check=False, terminal=True)
    assert missing.returncode != 0, missing.stdout


def test_helm_test_runs_its_job_and_succeeds(release, kind_env) -> None:
    result = sh(HELM_TEST, kind_env, timeout=300)
    assert re.search(r"^Phase:\s+Succeeded$", result.stdout, re.MULTILINE), result.stdout


def test_the_readme_consumer_receives_frames_in_a_pod(release, kubectl) -> None:
    result = run_pod(kubectl, NAMESPACE, "consumer", "drishti/stream:dev",
                     ["timeout", "6", "python3", "-c", CONSUMER], timeout=120)
    assert result.exit_code == 124, result  # still streaming when stopped
    rows = [line.split() for line in result.log.splitlines()]
    ids = [int(row[0]) for row in rows]
    assert len(ids) >= 30 and ids == sorted(set(ids)), result.log
    assert all(int(row[2]) > 0 for row in rows)
