"""The operator under control-plane faults, on the harness's real processes: a burst of new cameras while
the API server, etcd or the operator is killed with SIGKILL and started again 10 s later, and an API server
that answers slowly or with 429/500 (tests/operator/apiproxy.py). Every camera must end Ready with exactly
one Deployment and one Service of its own. Times to converge are printed (`pytest -s`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from drishti_operator import GROUP, PLURAL, VERSION
from kubernetes.client.rest import ApiException

from hack.cluster.controlplane import ControlPlane
from hack.cluster.testing import Cluster, wait_until
from tests.operator.apiproxy import ApiProxy
from tests.operator.conftest import Background, Cameras
from tests.operator_process import OperatorProcess

pytestmark = pytest.mark.cluster

DOWN_FOR = 10.0  # seconds a killed component stays down


class Burst(Background):
    """Creates cameras one after another, each tried again until the API server has it: a 409 means an
    earlier try got through although its answer was lost."""

    PACE_S = 0.05  # between two cameras

    def __init__(self, cams: Cameras, count: int) -> None:
        super().__init__(name="burst")
        self.cams = cams
        self.names = [f"burst-{i:02d}" for i in range(count)]
        self.created: list[str] = []
        self.failed_tries = 0
        self.last_error = ""

    def run(self) -> None:
        for name in self.names:
            while not self._create(name):
                self.failed_tries += 1
                if self.stopping.wait(0.5):
                    return
            self.created.append(name)
            if self.stopping.wait(self.PACE_S):
                return

    def _create(self, name: str) -> bool:
        try:
            self.cams.custom.create_namespaced_custom_object(GROUP, VERSION, self.cams.namespace, PLURAL,
                                                             self.cams.body(name), _request_timeout=5)
        except ApiException as exc:
            self.last_error = f"{exc.status} {exc.reason}: {exc.body!r:.300}"
            return exc.status == 409
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self.last_error = repr(exc)[:300]
            return False
        return True


def control_plane_of(cluster: Cluster) -> ControlPlane:
    if cluster.control_plane is None:
        pytest.skip("kills control-plane processes or stands in front of them: only on the local control "
                    "plane")
    return cluster.control_plane


@pytest.fixture
def room_for_pods(cams: Cameras) -> Iterator[None]:
    """Deletes the test's cameras afterwards and waits for their pods to go: the kwok node has room for 110,
    and the next tests need theirs."""
    yield
    cams.custom.delete_collection_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)
    wait_until(lambda: not cams.core.list_namespaced_pod(cams.namespace).items, timeout=120,
               what="the cameras' pods to go")


def all_ready(cams: Cameras, names: list[str]) -> bool:
    listed = cams.custom.list_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)["items"]
    ready = {c["metadata"]["name"] for c in listed
             if (c.get("status") or {}).get("phase") == "Ready"
             and c["status"].get("observedGeneration") == c["metadata"]["generation"]}
    return ready >= set(names)


def converge(cams: Cameras, names: list[str], since: float, timeout: float = 180.0) -> float:
    """Waits until every camera is Ready; returns the seconds it took from `since` (time.monotonic)."""
    wait_until(lambda: all_ready(cams, names), timeout=timeout, interval=0.5,
               what=lambda: f"{len(names)} cameras Ready")
    return time.monotonic() - since


def assert_one_child_each(cams: Cameras, names: list[str]) -> None:
    """Exactly one Deployment, one Service and one ReplicaSet per camera, each owned by its camera; no other
    child in the namespace."""
    uids = {c["metadata"]["name"]: c["metadata"]["uid"] for c in
            cams.custom.list_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)["items"]}
    assert sorted(uids) == sorted(names)
    for kind, items in (("Deployment", cams.apps.list_namespaced_deployment(cams.namespace).items),
                        ("Service", cams.core.list_namespaced_service(cams.namespace).items)):
        assert sorted(item.metadata.name for item in items) == sorted(names), kind
        for item in items:
            owners = [(ref.kind, ref.uid) for ref in item.metadata.owner_references or []]
            assert owners == [("VirtualCamera", uids[item.metadata.name])], (kind, item.metadata.name, owners)
    replica_sets = cams.apps.list_namespaced_replica_set(cams.namespace).items
    per_camera = sorted(rs.metadata.labels["app.kubernetes.io/instance"] for rs in replica_sets)
    assert per_camera == sorted(names), "a camera has more than one ReplicaSet: it was rolled again"


def timeline(cams: Cameras, since: float) -> str:
    """When the last of each step happened, in seconds after `since` (Unix time; the API server's timestamps
    have a resolution of one second): which component took the time to converge."""
    def last(stamps: list[datetime]) -> str:
        return f"{max(stamp.timestamp() for stamp in stamps) - since:+.0f} s" if stamps else "-"

    def transitions(conditions: list[Any] | None) -> list[datetime]:
        return [c.last_transition_time for c in conditions or [] if c.type == "Ready" and c.status == "True"]

    deployments = cams.apps.list_namespaced_deployment(cams.namespace).items
    pods = cams.core.list_namespaced_pod(cams.namespace).items
    cameras = cams.custom.list_namespaced_custom_object(GROUP, VERSION, cams.namespace, PLURAL)["items"]
    ready = [datetime.fromisoformat(c["lastTransitionTime"]) for camera in cameras
             for c in camera["status"]["conditions"] if c["type"] == "Ready"]
    return (f"last Deployment created {last([d.metadata.creation_timestamp for d in deployments])}, "
            f"last pod created {last([p.metadata.creation_timestamp for p in pods])}, "
            f"last pod Ready {last([t for p in pods for t in transitions(p.status.conditions)])}, "
            f"last camera Ready {last(ready)}")


def fault_lines(log: str) -> list[str]:
    """The operator's log lines about failed or slow API calls and what it retried."""
    words = ("will retry", "failed temporarily", "not written", "slow API call", "unreachable")
    return [line for line in log.splitlines() if any(word in line for word in words)]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim", ["kube-apiserver", "etcd", "operator"])
def test_a_burst_of_cameras_converges_after_a_kill(victim: str, cams: Cameras, operator: OperatorProcess,
                                                   k8s_cluster: Cluster, room_for_pods: None) -> None:
    control_plane = control_plane_of(k8s_cluster)
    log_offset, starts = len(operator.text()), operator.starts
    with Burst(cams, 50).running() as burst:
        wait_until(lambda: len(burst.created) >= 15, timeout=60,
                   what=lambda: f"15 cameras created; the last failed try: {burst.last_error}")
        created_before, killed_at = len(burst.created), time.monotonic()
        if victim == "operator":
            assert operator.proc is not None
            operator.proc.kill()
            operator.proc.wait()
            time.sleep(DOWN_FOR)
            operator.start()
        else:
            control_plane.kill(victim)
            try:
                time.sleep(DOWN_FOR)
            finally:  # whatever happens, the rest of the session needs it
                control_plane.revive(victim)
        back_at, back_wall = time.monotonic(), time.time()
        wait_until(lambda: not burst.is_alive(), timeout=120,
                   what=lambda: f"the burst to end; the last failed try: {burst.last_error}")
    assert created_before < len(burst.names) == len(burst.created)
    if victim != "operator":  # the outage hit the burst: creates failed while it lasted
        assert burst.failed_tries > 0
    took = converge(cams, burst.names, since=back_at)
    assert_one_child_each(cams, burst.names)
    count = len(burst.names)
    print(f"\n{victim} killed when {created_before} of {count} cameras were created, down "
          f"{back_at - killed_at:.1f} s: all {count} Ready {took:.1f} s after it was back; the burst's "
          f"failed create tries: {burst.failed_tries}")
    print(timeline(cams, since=back_wall))
    log = operator.text()[log_offset:]
    if victim == "operator":  # the new process takes every camera up again: resumed or created
        restarted = log[log.index(f"===== start #{operator.starts} ====="):]
        taken_up = {name for name in burst.names if f"/{name}] reconciled" in restarted}
        assert taken_up == set(burst.names), sorted(set(burst.names) - taken_up)
        print(f"the new operator reconciled all {len(taken_up)} cameras")
    else:
        assert operator.running and operator.starts == starts, "the operator exited during the outage"
        lines = fault_lines(log)
        # Without its API server every watch breaks, and Kopf says it retries them. Without etcd the API
        # server holds the watches open: only calls in flight then fail or wait, and there may be none.
        assert lines or victim == "etcd", "the operator logged nothing about the outage"
        print(f"operator log: {len(lines)} lines about failed or slow calls, e.g.\n" + "\n".join(
            line[:240] for line in lines[:: max(1, len(lines) // 6)]))


@pytest.fixture
def proxy(k8s_cluster: Cluster) -> Iterator[ApiProxy]:
    proxy = ApiProxy(control_plane_of(k8s_cluster))
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def operator_behind(proxy: ApiProxy, operator_process: OperatorProcess, operator_kubeconfig: Path,
                    tmp_path: Path) -> Iterator[OperatorProcess]:
    """The operator, alone (the package's one is stopped), to talk to the API server through the proxy: not
    started yet."""
    operator_process.stop()
    config = yaml.safe_load(operator_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    process = OperatorProcess(kubeconfig, tmp_path / "operator.log")
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.timeout(600)
def test_an_api_server_answering_in_two_seconds_slows_the_operator_but_it_converges(
        cams: Cameras, proxy: ApiProxy, operator_behind: OperatorProcess, room_for_pods: None) -> None:
    proxy.delay = 2.0
    operator_behind.start(timeout=120)
    names = [f"slow-{i}" for i in range(10)]
    started = time.monotonic()
    for name in names:
        cams.create(name)
    took = converge(cams, names, since=started, timeout=240)
    assert_one_child_each(cams, names)
    print(f"\n10 cameras through a proxy adding 2 s per request: all Ready in {took:.1f} s; "
          f"responses: {dict(proxy.answered)}")
    assert operator_behind.running and operator_behind.starts == 1


@pytest.mark.timeout(600)
@pytest.mark.parametrize("started_while_failing", [False, True], ids=["running", "starting"])
def test_an_api_server_answering_429_and_500_for_a_while_is_retried_until_it_converges(
        started_while_failing: bool, cams: Cameras, proxy: ApiProxy, operator_behind: OperatorProcess,
        room_for_pods: None) -> None:
    names = [f"shed-{i}" for i in range(10)]
    if started_while_failing:
        proxy.fail_for(20.0)
        operator_behind.start(timeout=60)
    else:  # with its watches open: it sees the new cameras at once, and each of its calls fails
        operator_behind.start()
        names.append("shed-warm-up")
        cams.create(names[-1])
        cams.wait_ready(names[-1])
        proxy.fail_for(20.0)
    for name in names[:10]:
        cams.create(name)
    wait_until(lambda: not proxy.failing, timeout=30, what="the end of the failures")
    healed = time.monotonic()
    took = converge(cams, names, since=healed, timeout=240)
    assert_one_child_each(cams, names)
    assert proxy.answered[429] and proxy.answered[500]
    log = operator_behind.text()
    lines = fault_lines(log)
    assert lines, "the operator logged nothing about the failing API server"
    if not started_while_failing:  # each camera's first reconcile failed, and was retried until it held
        retried = {name for name in names if f"/{name}] Handler 'reconcile' failed temporarily" in log}
        assert retried == set(names[:10])
    assert operator_behind.running and operator_behind.starts == 1
    print(f"\n10 cameras created while the API answered 429/500 for 20 s: all Ready {took:.1f} s after it "
          f"healed; responses: {dict(proxy.answered)}; operator log: {len(lines)} lines about failed calls, "
          "e.g.\n" + "\n".join(line[:240] for line in lines[:: max(1, len(lines) // 6)]))
