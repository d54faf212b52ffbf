"""Scale benchmark of the VirtualCamera operator: N cameras applied at once on the test control plane.

    .venv/bin/python bench/operator_scale.py                 # 200 cameras on a fresh local control plane
    .venv/bin/python bench/operator_scale.py --cameras 50 --rest 30
    KUBECONFIG=... .venv/bin/python bench/operator_scale.py --use-kubeconfig   # an existing cluster

What it measures (printed as a table, and as JSON with --json):

- all Ready: from the first create request to the last camera whose status.phase is Ready;
- create -> Deployment: per camera, from just before its create request to the watch event that shows its
  Deployment (p50, p99, max);
- operator CPU seconds (user+system, from /proc) during the burst, and its peak RSS (VmHWM);
- API requests per camera made by the operator, from the API server's own apiserver_request_total counters:
  every request on virtualcameras (and /status) minus the benchmark's own, plus every APPLY/PATCH/CREATE on
  deployments and services (only the operator writes those; the controllers write /status and ReplicaSets);
- at rest: for --rest seconds after everything is Ready, the writes (watch events on cameras, Deployments,
  Services, and mutating requests counted by the API server on those resources) per minute;
- restart: the operator is restarted; time until it has resumed every camera, and the writes it caused.

Targets (issue 5): all Ready <= 60 s, p99 create->Deployment <= 5 s, RSS <= 200 MB, zero writes/min at rest.
The harness has one fake node (110 pods); the benchmark registers more kwok nodes so every camera's pod fits.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for entry in (REPO, REPO / "service", REPO / "operator"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

# imported after the sys.path tweak above, so the script also runs directly (python bench/operator_scale.py)
from drishti_operator import GROUP, PLURAL, VERSION, crd  # noqa: E402
from drishti_operator.render import MANAGED_SELECTOR  # noqa: E402
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

from bench.procstat import cpu_seconds, rss_mb  # noqa: E402
from hack.cluster.testing import wait_until  # noqa: E402
from tests.operator_process import OperatorProcess  # noqa: E402
from tests.service.camera import metric_samples  # noqa: E402

NAMESPACE = "bench-scale"
TARGETS = {"all_ready_s": 60.0, "p99_create_to_deployment_s": 5.0, "peak_rss_mb": 200.0,
           "writes_per_min_at_rest": 0}
PODS_PER_NODE = 110


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the cluster --------------------------------------------------------------------------------------------


def start_control_plane() -> tuple[Any, str]:
    from hack.cluster import build
    from hack.cluster.controlplane import ephemeral

    build.ensure_built()
    cp = ephemeral()
    t0 = time.monotonic()
    cp.start()
    log(f"control plane ready in {time.monotonic() - t0:.1f}s ({cp.server})")
    return cp, str(cp.kubeconfig)


def add_fake_nodes(core: client.CoreV1Api, pods: int) -> None:
    """Clones the harness's kwok node until the cluster has room for `pods` more pods."""
    nodes = core.list_node().items
    fake = [n for n in nodes if (n.metadata.annotations or {}).get("kwok.x-k8s.io/node") == "fake"]
    if not fake:
        log("no kwok node found: not adding nodes")
        return
    template = fake[0]
    # + 1: one node of headroom (and for the operator's rollouts)
    needed = -(-pods // PODS_PER_NODE) + 1 - len(fake)
    for index in range(needed):
        name = f"bench-node-{index}"
        labels = {**(template.metadata.labels or {}), "kubernetes.io/hostname": name}
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": template.metadata.annotations},
            "spec": {"taints": []},
            "status": {"allocatable": template.status.allocatable, "capacity": template.status.capacity},
        }
        try:
            core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    if needed > 0:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = [n for n in core.list_node().items
                     if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
            if len(ready) >= len(fake) + needed:
                break
            time.sleep(0.5)
        log(f"added {needed} kwok node(s)")


def kubectl(kubeconfig: str, *args: str) -> str:
    from hack.cluster.testing import tool

    return subprocess.run([str(tool("kubectl")), *args], env={**os.environ, "KUBECONFIG": kubeconfig},
                          capture_output=True, text=True, check=True, timeout=120).stdout


def request_counts(api: client.ApiClient) -> Counter[tuple[str, str, str, str]]:
    """apiserver_request_total, summed by (group, resource, subresource, verb)."""
    response = api.call_api("GET", f"{api.configuration.host}/metrics",
                            header_params={"Accept": "text/plain", **_auth_headers(api)}, _request_timeout=30)
    response.read()
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for sample in metric_samples(response.data.decode(), "apiserver_request_total"):
        labels = sample.labels
        key = (labels.get("group", ""), labels.get("resource", ""), labels.get("subresource", ""),
               labels.get("verb", ""))
        counts[key] += int(sample.value)
    return counts


def _auth_headers(api: client.ApiClient) -> dict[str, str]:
    headers: dict[str, str] = {}
    token = api.configuration.get_api_key_with_prefix("BearerToken") \
        or api.configuration.get_api_key_with_prefix("authorization")
    if token:
        headers["Authorization"] = token if " " in token else f"Bearer {token}"
    return headers


WRITE_VERBS = {"POST", "CREATE", "PUT", "UPDATE", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION"}


def operator_requests(delta: Counter[tuple[str, str, str, str]], bench_camera_requests: int) -> int:
    """The requests the operator made, out of the API server's counters (see the module docstring)."""
    total = 0
    for (group, resource, subresource, verb), count in delta.items():
        # GETs of cameras are the garbage collector's owner lookups (one per new owner); the operator reads
        # a camera only after one of its children was deleted, which the benchmark does not do.
        camera_request = group == GROUP and resource == PLURAL and verb != "GET"
        child_write = (group, resource) in (("apps", "deployments"), ("", "services")) and subresource == "" \
            and verb in {"APPLY", "PATCH", "CREATE", "POST"}
        if camera_request or child_write:
            total += count
    return total - bench_camera_requests


def writes(delta: Counter[tuple[str, str, str, str]]) -> int:
    """Mutating requests on cameras (any subresource) and on the children's own fields (not their /status,
    which the Deployment controller writes)."""
    return sum(count for (group, resource, subresource, verb), count in delta.items()
               if verb in WRITE_VERBS and ((group, resource) == (GROUP, PLURAL) or (
                   (group, resource) in (("apps", "deployments"), ("", "services")) and subresource == "")))


def settled(apps: client.AppsV1Api, expected: int) -> bool:
    """True when the Deployment controller has caught up with every camera's Deployment."""
    items = apps.list_namespaced_deployment(NAMESPACE, label_selector=MANAGED_SELECTOR).items
    return len(items) == expected and all(
        (d.status.observed_generation or 0) >= d.metadata.generation
        and (d.status.ready_replicas or 0) == d.spec.replicas
        and (d.status.updated_replicas or 0) == d.spec.replicas for d in items)


# --- observation --------------------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """Watches one resource in the benchmark namespace, recording when each object first matched."""

    def __init__(self, kubeconfig: str, list_fn: str, group_args: tuple[Any, ...], label_selector: str | None,
                 predicate=lambda obj: True, key=lambda obj: obj["metadata"]["name"]) -> None:
        super().__init__(daemon=True)
        self.api = config.new_client_from_config(config_file=kubeconfig)
        self.list_fn, self.group_args, self.label_selector, self.predicate, self.key = \
            list_fn, group_args, label_selector, predicate, key
        self.first: dict[str, float] = {}
        self.events = 0
        self.counting = False
        self.stopping = threading.Event()
        self.watch = watch.Watch()

    def run(self) -> None:
        owner = {"list_namespaced_deployment": client.AppsV1Api, "list_namespaced_service": client.CoreV1Api,
                 "list_namespaced_pod": client.CoreV1Api,
                 "list_namespaced_custom_object": client.CustomObjectsApi}[self.list_fn]
        method = getattr(owner(self.api), self.list_fn)
        kwargs: dict[str, Any] = {"_request_timeout": 600, "deserialize": False}  # plain dicts: cheap
        if self.label_selector:
            kwargs["label_selector"] = self.label_selector
        while not self.stopping.is_set():
            try:
                for event in self.watch.stream(method, *self.group_args, **kwargs):
                    obj = event["object"]
                    obj = obj if isinstance(obj, dict) else self.api.sanitize_for_serialization(obj)
                    if self.counting and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.events += 1
                    name = self.key(obj)
                    if name not in self.first and event["type"] != "DELETED" and self.predicate(obj):
                        self.first[name] = time.time()
                    if self.stopping.is_set():
                        break
            except Exception as exc:  # noqa: BLE001  (a closed stream: start again unless stopping)
                if not self.stopping.is_set():
                    log(f"watch {self.list_fn} restarted: {type(exc).__name__}")
                    time.sleep(0.2)

    def stop(self) -> None:
        self.stopping.set()
        self.watch.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def camera(name: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VirtualCamera",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"source": "synthetic", "fps": 15}}


# --- the run ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    control_plane = None
    if args.use_kubeconfig:
        kubeconfig = os.environ["KUBECONFIG"]
    else:
        control_plane, kubeconfig = start_control_plane()
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    # the operator's own status delay, as in production (the tests shorten it)
    operator = OperatorProcess(Path(kubeconfig), work / "operator.log", status_delay=None)
    results: dict[str, Any] = {"cameras": args.cameras}
    try:
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(crd.CRD_FILE))
        kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{PLURAL}.{GROUP}")
        add_fake_nodes(core, args.cameras)
        try:
            core.create_namespace({"metadata": {"name": NAMESPACE}})
        except ApiException as exc:
            if exc.status != 409:
                raise
        wait_until(lambda: any(sa.metadata.name == "default"
                               for sa in core.list_namespaced_service_account(NAMESPACE).items),
                   30, what=f"the default ServiceAccount of {NAMESPACE}")

        operator.start()
        log(f"operator pid {operator.proc.pid}, log {operator.log}")
        time.sleep(2.0)
        deployments = Watcher(kubeconfig, "list_namespaced_deployment", (NAMESPACE,), MANAGED_SELECTOR)
        services = Watcher(kubeconfig, "list_namespaced_service", (NAMESPACE,), MANAGED_SELECTOR)
        ready = Watcher(kubeconfig, "list_namespaced_custom_object", (GROUP, VERSION, NAMESPACE, PLURAL),
                        None, predicate=lambda obj: (obj.get("status") or {}).get("phase") == "Ready")
        pods = Watcher(kubeconfig, "list_namespaced_pod", (NAMESPACE,), MANAGED_SELECTOR,
                       predicate=lambda obj: any(c.get("type") == "Ready" and c.get("status") == "True"
                                                 for c in (obj.get("status") or {}).get("conditions") or []),
                       key=lambda obj: obj["metadata"]["labels"].get("app.kubernetes.io/instance", ""))
        for watcher in (deployments, services, ready, pods):
            watcher.start()
        time.sleep(1.0)

        counts_before = request_counts(api)
        cpu_before = cpu_seconds(operator.proc.pid)
        sent: dict[str, float] = {}
        names = [f"cam-{i:03d}" for i in range(args.cameras)]

        def create(name: str) -> None:
            sent[name] = time.time()
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, camera(name))

        log(f"creating {args.cameras} cameras ({args.clients} concurrent clients) "
            f"at {time.strftime('%H:%M:%S')}")
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(create, names))
        created_in = time.time() - t0
        deadline = time.time() + args.timeout
        while len(ready.first) < args.cameras and time.time() < deadline:
            time.sleep(0.2)
        if len(ready.first) < args.cameras:
            log(f"only {len(ready.first)} of {args.cameras} cameras Ready after {args.timeout}s")
        all_ready = max(ready.first.values(), default=float("nan")) - t0
        latencies = [deployments.first[n] - sent[n] for n in names if n in deployments.first]
        status_lag = [ready.first[n] - pods.first[n] for n in names if n in ready.first and n in pods.first]
        (work / "timings.json").write_text(json.dumps({n: {
            "sent": sent.get(n), "deployment": deployments.first.get(n), "service": services.first.get(n),
            "pod_ready": pods.first.get(n), "camera_ready": ready.first.get(n)} for n in names}, indent=1))
        all_pods_ready = max(pods.first.values(), default=float("nan")) - t0
        time.sleep(3.0)  # the last status writes
        counts_burst = request_counts(api)
        cpu_burst = cpu_seconds(operator.proc.pid) - cpu_before
        delta = counts_burst - counts_before
        # the benchmark's own requests on cameras: its creates (its one watch is within rounding)
        per_camera = operator_requests(delta, args.cameras) / args.cameras
        by_kind = {f"{r}{'/' + s if s else ''} {v}": c for (g, r, s, v), c in sorted(delta.items())
                   if c and ((g == GROUP and r == PLURAL)
                             or ((g, r) in (("apps", "deployments"), ("", "services"))
                                 and s == "" and v in {"APPLY", "PATCH", "CREATE"}))}
        results.update({
            "create_requests_s": round(created_in, 2),
            "all_ready_s": round(all_ready, 2),
            "ready_cameras": len(ready.first),
            "deployments_seen": len(latencies),
            "p50_create_to_deployment_s": round(percentile(latencies, 50), 3),
            "p99_create_to_deployment_s": round(percentile(latencies, 99), 3),
            "max_create_to_deployment_s": round(max(latencies, default=float("nan")), 3),
            "all_pods_ready_s": round(all_pods_ready, 2),
            "p50_pod_ready_to_camera_ready_s": round(percentile(status_lag, 50), 3),
            "p99_pod_ready_to_camera_ready_s": round(percentile(status_lag, 99), 3),
            "operator_cpu_s_burst": round(cpu_burst, 2),
            "api_requests_per_camera": round(per_camera, 2),
            "api_requests_by_kind": by_kind,
        })

        # at rest: once the controllers have caught up too (their status writes are not the operator's)
        t_settle = time.time()
        while not settled(client.AppsV1Api(api), args.cameras) and time.time() < t_settle + args.timeout:
            time.sleep(1.0)
        results["controllers_settled_s"] = round(time.time() - t0, 2)
        time.sleep(5.0)
        for watcher in (deployments, services, ready):
            watcher.events = 0
            watcher.counting = True
        rest_before = request_counts(api)
        cpu_rest_before = cpu_seconds(operator.proc.pid)
        log(f"at rest for {args.rest}s")
        time.sleep(args.rest)
        rest_delta = request_counts(api) - rest_before
        for watcher in (deployments, services, ready):
            watcher.counting = False
        events_at_rest = deployments.events + services.events + ready.events
        results.update({
            "rest_window_s": args.rest,
            "writes_per_min_at_rest": round(writes(rest_delta) * 60 / args.rest, 2),
            "watch_events_per_min_at_rest": round(events_at_rest * 60 / args.rest, 2),
            "operator_cpu_s_per_min_at_rest": round(
                (cpu_seconds(operator.proc.pid) - cpu_rest_before) * 60 / args.rest, 3),
            "peak_rss_mb": round(rss_mb(operator.proc.pid, "VmHWM"), 1),
            "rss_mb_at_rest": round(rss_mb(operator.proc.pid), 1),
        })

        # restart: every camera resumed, nothing written
        if args.restart:
            mark = operator.log.stat().st_size
            restart_before = request_counts(api)
            for watcher in (deployments, services, ready):
                watcher.events = 0
                watcher.counting = True
            operator.stop()
            t1 = time.time()
            operator.start()
            deadline = time.time() + 120
            resumed = 0
            while time.time() < deadline:
                with operator.log.open("rb") as handle:
                    handle.seek(mark)
                    resumed = handle.read().decode(errors="replace").count("reconciled (")
                if resumed >= args.cameras:
                    break
                time.sleep(0.5)
            resumed_in = time.time() - t1
            time.sleep(3.0)
            restart_delta = request_counts(api) - restart_before
            for watcher in (deployments, services, ready):
                watcher.counting = False
            results.update({
                "restart_resumed_cameras": resumed,
                "restart_resume_all_s": round(resumed_in, 2),
                "restart_writes": writes(restart_delta),
                "restart_watch_events": deployments.events + services.events + ready.events,
                "restart_api_requests_per_camera": round(
                    operator_requests(restart_delta, 0) / args.cameras, 2),
            })
        for watcher in (deployments, services, ready, pods):
            watcher.stop()
    finally:
        operator.stop()
        if control_plane is not None:
            control_plane.stop()
        else:
            try:
                core.delete_namespace(NAMESPACE)
            except ApiException:
                pass
    return results


def report(results: dict[str, Any]) -> str:
    rows = [
        ("cameras", results["cameras"], ""),
        ("create requests sent in", f"{results['create_requests_s']} s", ""),
        ("all Ready after", f"{results['all_ready_s']} s ({results['ready_cameras']} Ready)",
         f"<= {TARGETS['all_ready_s']:.0f} s"),
        ("create -> Deployment p50", f"{results['p50_create_to_deployment_s']} s", ""),
        ("create -> Deployment p99", f"{results['p99_create_to_deployment_s']} s",
         f"<= {TARGETS['p99_create_to_deployment_s']:.0f} s"),
        ("create -> Deployment max", f"{results['max_create_to_deployment_s']} s", ""),
        ("every camera's first pod Ready after", f"{results['all_pods_ready_s']} s", "(the cluster's part)"),
        ("Deployment controller caught up after", f"{results['controllers_settled_s']} s", ""),
        ("pod Ready -> camera Ready p50 / p99",
         f"{results['p50_pod_ready_to_camera_ready_s']} / {results['p99_pod_ready_to_camera_ready_s']} s",
         "(the operator's part)"),
        ("operator CPU during the burst", f"{results['operator_cpu_s_burst']} s", ""),
        ("operator peak RSS", f"{results['peak_rss_mb']} MB", f"<= {TARGETS['peak_rss_mb']:.0f} MB"),
        ("operator RSS at rest", f"{results['rss_mb_at_rest']} MB", ""),
        ("API requests per camera (operator)", results["api_requests_per_camera"], ""),
        (f"writes/min at rest ({results['rest_window_s']} s)", results["writes_per_min_at_rest"], "0"),
        ("watch events/min at rest (cameras, children)", results["watch_events_per_min_at_rest"], "0"),
        ("operator CPU at rest", f"{results['operator_cpu_s_per_min_at_rest']} s/min", ""),
    ]
    if "restart_resume_all_s" in results:
        rows += [
            ("restart: all cameras resumed in",
             f"{results['restart_resume_all_s']} s ({results['restart_resumed_cameras']})", ""),
            ("restart: objects changed (watch events)", results["restart_watch_events"], "0"),
            ("restart: mutating requests (no-op applies)", results["restart_writes"], ""),
            ("restart: API requests per camera", results["restart_api_requests_per_camera"], ""),
        ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name:<{width}}  {value!s:<28} {target}" for name, value, target in rows]
    lines.append("requests on cameras and children during the burst (with the benchmark's POSTs and the "
                 "garbage collector's GETs): " + ", ".join(f"{k}={v}" for k, v in
                                                          results["api_requests_by_kind"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16, help="concurrent create requests")
    parser.add_argument("--rest", type=float, default=60.0, help="seconds at rest to count writes")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for all Ready")
    parser.add_argument("--no-restart", dest="restart", action="store_false", help="skip the restart phase")
    parser.add_argument("--use-kubeconfig", action="store_true", help="use $KUBECONFIG's cluster")
    parser.add_argument("--workdir",
                        default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "drishti-bench-operator"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = run(args)
    print(json.dumps(results, indent=2) if args.json else report(results))
    ok = (results["all_ready_s"] <= TARGETS["all_ready_s"]
          and results["p99_create_to_deployment_s"] <= TARGETS["p99_create_to_deployment_s"]
          and results["peak_rss_mb"] <= TARGETS["peak_rss_mb"]
          and results["writes_per_min_at_rest"] <= TARGETS["writes_per_min_at_rest"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
