"""What only real pods show: replicas that agree frame for frame, a rollout that keeps the clock, failures the
kubelet reports (a missing source, a missing image, too little memory) turned into the camera's status, and a
deleted pod that consumers ride through. Consumers are pods running tests/kind/recorder.py.

Figures (gaps, times to Degraded and back) are printed; `pytest -s tests/kind/test_cluster_life.py`
shows them.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hack.cluster.testing import wait_until
from tests.kind.cameras import apply_camera, condition, node_volume, wait_ready
from tests.kind.pods import start_pod, wait_pod
from tests.service.camera import write_video

pytestmark = pytest.mark.timeout(600)

RECORDER = (Path(__file__).with_name("recorder.py")).read_text()
RECONNECT_DELAY = 0.2  # recorder.py's
IMAGE = "drishti/stream:dev"


def events(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def frames_by_url(recorded: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for event in recorded:
        if "frame_id" in event:
            out[event["url"]].append(event)
    return out


def start_recording(kubectl, namespace: str, seconds: int, *urls: str) -> None:
    """A recorder pod, reconnecting, on each URL for ``seconds``; returns once it has run for 5 s."""
    start_pod(kubectl, namespace, "recorder", IMAGE, ["python3", "-c", RECORDER, str(seconds), *urls])
    wait_until(lambda: "Running" in kubectl("-n", namespace, "get", "pod", "recorder",
                                            "-o", "jsonpath={.status.phase}").stdout,
               timeout=60, what="recorder")
    time.sleep(5)  # frames before whatever the test does next


def recorded_frames(kubectl, namespace: str) -> tuple[list[dict], list[dict]]:
    """The recorder's frames and closes, once it ends; on each URL, ids never go backwards nor repeat."""
    result = wait_pod(kubectl, namespace, "recorder", timeout=120)
    assert result.exit_code == 0, result
    recorded = events(result.log)
    frames = [e for e in recorded if "frame_id" in e]
    for url, received in frames_by_url(frames).items():
        ids = [f["frame_id"] for f in received]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), f"{url}: frame_id went backwards or repeated"
    return frames, [e for e in recorded if "closed" in e]


def reconnects(frames: list[dict]) -> list[tuple[float, int]]:
    """Per new connection: seconds from the last frame before it to its first, and the ids missed between."""
    out = []
    for conn in sorted({f["conn"] for f in frames})[1:]:
        before = max((f for f in frames if f["conn"] < conn), key=lambda f: f["received"])
        after = min((f for f in frames if f["conn"] == conn), key=lambda f: f["received"])
        missed = after["frame_id"] - before["frame_id"] - 1
        out.append((round(after["received"] - before["received"], 3), missed))
    return out


def pod_names(kubectl, namespace: str) -> list[str]:
    return kubectl("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=camera",
                   "-o", "jsonpath={.items[*].metadata.name}").stdout.split()


def connected_clients(kubectl, namespace: str, pod: str) -> int:
    """The camera pod's own count (its /metrics, through the API server's pod proxy)."""
    metrics = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:8000/proxy/metrics").stdout
    return int(sum(sample.value for family in text_string_to_metric_families(metrics)
                   if family.name == "drishti_clients_connected" for sample in family.samples))


def pod_ips(kubectl, namespace: str, name: str) -> list[str]:
    """The addresses of the camera's pods that are Ready (and not going)."""
    pods = json.loads(kubectl("-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={name}",
                              "-o", "json").stdout)["items"]
    return sorted(p["status"]["podIP"] for p in pods
                  if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
                  and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p["status"].get("conditions", [])))


def test_replicas_agree_frame_for_frame(operator, kubectl, namespace) -> None:
    apply_camera(kubectl, namespace, "twin")
    wait_ready(kubectl, namespace, "twin")
    kubectl("-n", namespace, "scale", "vcam/twin", "--replicas=2")
    wait_until(lambda: len(pod_ips(kubectl, namespace, "twin")) == 2, timeout=180, what="two Ready pods")
    direct = [f"ws://{ip}:8000/ws/stream" for ip in pod_ips(kubectl, namespace, "twin")]
    service = f"ws://twin.{namespace}.svc:8000/ws/stream"
    start_recording(kubectl, namespace, 12, *direct, *[f"{service}?c={i}" for i in range(6)])
    # where the Service sent its 6 consumers: each pod's count of clients, less its direct one
    through_service = {pod: connected_clients(kubectl, namespace, pod) - 1
                       for pod in pod_names(kubectl, namespace)}
    frames, _ = recorded_frames(kubectl, namespace)
    by_url = frames_by_url(frames)
    seen = {url: {f["frame_id"]: (f["timestamp"], f["sha"]) for f in frames}
            for url, frames in by_url.items()}
    first, second = (seen[url] for url in direct)
    common = first.keys() & second.keys()
    assert len(common) >= 100, f"{len(common)} ids seen by both pods"  # 15 fps for 10 s
    assert all(first[i] == second[i] for i in common), [i for i in common if first[i] != second[i]][:5]
    for url in by_url.keys() - set(direct):  # through the Service: whichever pod, the same camera
        shared = seen[url].keys() & common
        assert len(shared) >= 100 and all(seen[url][i] == first[i] for i in shared), url
    assert sum(through_service.values()) == 6, through_service
    print(f"\n[replicas] {len(common)} ids seen by both pods, all equal in frame_id, timestamp and JPEG; "
          f"the Service's 6 consumers landed {sorted(through_service.values())} on the two pods")


def test_a_rollout_keeps_the_clock(operator, kubectl, namespace) -> None:
    apply_camera(kubectl, namespace, "roll", replicas=2)
    wait_ready(kubectl, namespace, "roll")
    epoch_before = env_of(kubectl, namespace, "roll")["DRISHTI_EPOCH"]
    start_recording(kubectl, namespace, 45, f"ws://roll.{namespace}.svc:8000/ws/stream")
    kubectl("-n", namespace, "patch", "vcam/roll", "--type=merge", "-p", '{"spec": {"jpegQuality": 70}}')
    wait_until(lambda: generation_rolled(kubectl, namespace, "roll"), timeout=60, what="the rollout to start")
    wait_ready(kubectl, namespace, "roll")
    assert env_of(kubectl, namespace, "roll")["DRISHTI_EPOCH"] == epoch_before
    frames, closes = recorded_frames(kubectl, namespace)
    assert closes, "the rollout closed no connection: the pods did not roll"
    assert {e["closed"] for e in closes} <= {1001, None}, closes
    gaps = [gap for gap, _ in reconnects(frames)]
    assert gaps and max(gaps) < 1 + RECONNECT_DELAY, gaps
    print(f"\n[rollout] {len(closes)} reconnects ({sorted({e['closed'] for e in closes}, key=str)}), "
          f"gaps between the last frame of an old pod and the first of a new one: {gaps} s")


def env_of(kubectl, namespace: str, name: str) -> dict[str, str]:
    deployment = json.loads(kubectl("-n", namespace, "get", "deployment", name, "-o", "json").stdout)
    return {e["name"]: e.get("value", "")
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def generation_rolled(kubectl, namespace: str, name: str) -> bool:
    deployment = json.loads(kubectl("-n", namespace, "get", "deployment", name, "-o", "json").stdout)
    return deployment["metadata"]["generation"] > 1


def test_a_missing_file_on_the_pvc_is_reported_from_its_termination_message(
        operator, kind_cluster, kubectl, namespace, tmp_path: Path) -> None:
    write_video(tmp_path / "present.mp4", frames=30, fps=15, size=(320, 240))
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "videos"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    with node_volume(kind_cluster, kubectl, namespace, claim, [tmp_path / "present.mp4"]):
        kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(claim))
        apply_camera(kubectl, namespace, "lost", source="missing.mp4", volume={"claimName": "videos"})
        t0 = time.monotonic()
        degraded = wait_until(lambda: (c := condition(kubectl, namespace, "lost", "Degraded")).get("status")
                              == "True" and c.get("reason") == "CrashLoopBackOff" and c, timeout=60,
                              interval=1, what="Degraded with CrashLoopBackOff")
        took = time.monotonic() - t0
        assert "drishti-stream: /videos/missing.mp4: no such video file" in degraded["message"], degraded
        apply_camera(kubectl, namespace, "lost", source="present.mp4", volume={"claimName": "videos"})
        t1 = time.monotonic()
        wait_ready(kubectl, namespace, "lost")
    print(f"\n[missing file on the PVC] Degraded after {took:.0f} s: {degraded['message']!r}; "
          f"Ready {time.monotonic() - t1:.0f} s after the fix")


def camera_info(kubectl, namespace: str, pod: str) -> dict:
    """The camera pod's `/` (through the API server's pod proxy)."""
    proxy = f"/api/v1/namespaces/{namespace}/pods/{pod}:8000/proxy/"
    return json.loads(kubectl("get", "--raw", proxy).stdout)


def frames_encoded(kubectl, namespace: str, pod: str) -> int:
    metrics = kubectl("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:8000/proxy/metrics").stdout
    return int(sum(sample.value for family in text_string_to_metric_families(metrics)
                   if family.name == "drishti_frames_encoded" for sample in family.samples
                   if sample.name == "drishti_frames_encoded_total"))


def test_two_replicas_on_one_claim_encode_the_video_once(operator, kind_cluster, kubectl, namespace) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "frames"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    with node_volume(kind_cluster, kubectl, namespace, claim, [], writable=True):
        kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(claim))
        apply_camera(kubectl, namespace, "pair", source="synthetic:640x360", replicas=2,
                     store={"claimName": "frames"})
        wait_ready(kubectl, namespace, "pair")
        pods = pod_names(kubectl, namespace)
        assert len(pods) == 2, pods
        wait_until(lambda: all(camera_info(kubectl, namespace, pod)["frame_store"]["state"] == "complete"
                               for pod in pods), timeout=120, interval=1, what="both pods' stores complete")
        counts = {pod: frames_encoded(kubectl, namespace, pod) for pod in pods}
        paths = {camera_info(kubectl, namespace, pod)["frame_store"]["path"] for pod in pods}
    assert sum(counts.values()) == 300 and min(counts.values()) == 0, counts
    assert len(paths) == 1 and paths.pop().startswith("/var/cache/drishti/frames/"), paths
    print(f"\n[shared store] frames encoded per pod: {counts}")


def test_an_image_that_does_not_exist_degrades_then_recovers(operator, kubectl, namespace) -> None:
    apply_camera(kubectl, namespace, "ghost", image="drishti/stream:no-such-tag")
    degraded = wait_until(lambda: (c := condition(kubectl, namespace, "ghost", "Degraded")).get("status")
                          == "True" and c.get("reason") in ("ErrImagePull", "ImagePullBackOff") and c,
                          timeout=120, interval=1, what="Degraded with an image pull reason")
    assert "no-such-tag" in degraded["message"], degraded
    apply_camera(kubectl, namespace, "ghost", image=IMAGE)
    wait_ready(kubectl, namespace, "ghost")
    print(f"\n[missing image] {degraded['reason']}: {degraded['message'][:160]!r}")


def test_too_little_memory_is_reported_as_oomkilled(operator, kubectl, namespace) -> None:
    apply_camera(kubectl, namespace, "tiny", resources={"limits": {"memory": "48Mi"},
                                                         "requests": {"memory": "48Mi"}})
    degraded = wait_until(lambda: (c := condition(kubectl, namespace, "tiny", "Degraded")).get("status")
                          == "True" and c.get("reason") == "OOMKilled" and c, timeout=120, interval=1,
                          what="Degraded with OOMKilled")
    apply_camera(kubectl, namespace, "tiny", resources={"limits": {"memory": "512Mi"},
                                                         "requests": {"memory": "256Mi"}})
    wait_ready(kubectl, namespace, "tiny")
    print(f"\n[oom] {degraded['reason']}: {degraded['message']!r}")


def test_consumers_ride_through_a_deleted_pod(operator, kubectl, namespace) -> None:
    apply_camera(kubectl, namespace, "phoenix")
    wait_ready(kubectl, namespace, "phoenix")
    start_recording(kubectl, namespace, 40, f"ws://phoenix.{namespace}.svc:8000/ws/stream")
    kubectl("-n", namespace, "delete", "pod", "-l", "app.kubernetes.io/instance=phoenix", "--wait=false")
    frames, _ = recorded_frames(kubectl, namespace)
    back = reconnects(frames)
    assert back, "no reconnect: the pod was not replaced"
    gap, missed = back[-1]
    assert abs(missed - round(gap * 15)) <= 2, (missed, gap)  # ids continue on the clock, not from zero
    print(f"\n[deleted pod] back after {gap:.1f} s, {missed} frame ids missed, ids continued on the clock")


def test_the_operator_restarts_during_a_burst_of_twenty_cameras(operator, kubectl, namespace) -> None:
    names = [f"burst-{i:02d}" for i in range(20)]
    cameras = [{"apiVersion": "drishti.io/v1alpha1", "kind": "VirtualCamera", "metadata": {"name": name},
                "spec": {"source": "synthetic:160x120", "fps": 5,
                         "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}}}} for name in names]
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(cameras))
    t0 = time.monotonic()
    kubectl("-n", operator, "delete", "pod", "-l", "app.kubernetes.io/component=operator",
            "--wait=false")

    def ready() -> list[str]:
        listed = json.loads(kubectl("-n", namespace, "get", "vcam", "-o", "json").stdout)["items"]
        return [c["metadata"]["name"] for c in listed
                if any(k["type"] == "Ready" and k["status"] == "True"
                       for k in c.get("status", {}).get("conditions", []))]

    wait_until(lambda: len(ready()) == len(names), timeout=420, interval=3,
               what=lambda: f"all 20 cameras Ready (Ready: {len(ready())})")
    took = time.monotonic() - t0
    uids = {c["metadata"]["name"]: c["metadata"]["uid"]
            for c in json.loads(kubectl("-n", namespace, "get", "vcam", "-o", "json").stdout)["items"]}
    for kind in ("deployments", "services"):
        children = json.loads(kubectl("-n", namespace, "get", kind, "-o", "json").stdout)["items"]
        assert sorted(c["metadata"]["name"] for c in children) == names, kind  # exactly one each, no orphan
        for child in children:
            owners = [o["uid"] for o in child["metadata"].get("ownerReferences", [])]
            assert owners == [uids[child["metadata"]["name"]]], child["metadata"]
    print(f"\n[operator restart] 20 cameras Ready {took:.0f} s after the burst, each with one Deployment "
          "and one Service")
