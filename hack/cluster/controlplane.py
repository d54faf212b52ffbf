"""Run a real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (one fake node, so pods schedule and become Ready without a kubelet).

All state of one control plane lives in one directory: certificates, kubeconfigs, etcd data, logs and one pid
file per process. Starting in a directory that holds the pid files of a killed run first stops those processes
and clears it. Ephemeral runs (the test suite's) live under ``$TMPDIR/drishti-k8s-<uid>/`` together with the
pid of the process that owns them, so a later run clears the leftovers of one that was killed.

    cp = ControlPlane(Path(".cache/cluster"))
    cp.start()            # returns once /readyz is ok and the fake node is Ready
    cp.kubeconfig         # admin kubeconfig, certificates embedded
    cp.stop()
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hack.cluster import build

LOOPBACK = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_FIRST_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/24"  # kwok hands pod IPs out of this range
NODE_NAME = "kwok-node-0"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# Stop order: the reverse of the start order.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ControlPlaneError(RuntimeError):
    pass


@dataclass
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        """Ports the kernel says are free right now, all different (held open together while picking)."""
        socks = []
        try:
            for _ in range(6):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((LOOPBACK, 0))
                socks.append(s)
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """The process start time in clock ticks since boot: with the pid, identifies a process uniquely."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _terminate(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each process, wait up to ``timeout`` for all, then SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        for p in pids:  # reap our own children so they do not linger as zombies
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(p, os.WNOHANG)
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: between fork and exec nothing may load a library


def _die_with_parent() -> None:
    """In the child, before exec: ask the kernel to SIGKILL it when the parent dies (PR_SET_PDEATHSIG).

    SIGKILL, not SIGTERM: the state is thrown away anyway, and an API server whose etcd is already gone
    takes many seconds to shut down gracefully.
    """
    LIBC.prctl(1, signal.SIGKILL, 0, 0, 0)


# --- the control plane --------------------------------------------------------------------------------------

class ControlPlane:
    """One control plane whose whole state lives in ``directory``.

    ``attached=True`` (the test suite): components get SIGKILL from the kernel if this process dies, and the
    directory records this process as its owner. ``attached=False`` (``make cluster-up``): the components
    outlive the command that started them; ``stop`` from any later process ends them through the pid files.
    """

    def __init__(self, directory: Path, *, attached: bool = True, bin_dir: Path | None = None) -> None:
        self.dir = Path(directory).resolve()
        self.attached = attached
        self.bin_dir = bin_dir or build.bin_dir()
        self.kubeconfig = self.dir / "kubeconfig"
        self.pki = self.dir / "pki"
        self.logs = self.dir / "logs"
        self.pids = self.dir / "pids"
        self.ports: Ports | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._load_state()

    # -- state on disk

    def _load_state(self) -> None:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, TypeError):
            self.ports = Ports(**json.loads((self.dir / "ports.json").read_text()))

    def _recorded_pids(self) -> dict[str, int]:
        found = {}
        for f in self.pids.glob("*.pid") if self.pids.is_dir() else ():
            with contextlib.suppress(ValueError, OSError):
                found[f.stem] = int(f.read_text().split()[0])
        return found

    def _ours(self, pid: int) -> bool:
        """A recorded pid still names one of our processes (not a reused pid): its command line names
        our dir."""
        return _alive(pid) and str(self.dir) in _cmdline(pid)

    def running_components(self) -> list[str]:
        return [name for name, pid in self._recorded_pids().items() if self._ours(pid)]

    @property
    def server(self) -> str:
        if self.ports is None:
            raise ControlPlaneError("control plane not started")
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    def clear(self) -> None:
        """Stop whatever a previous run left behind in this directory, then empty it."""
        stale = [pid for pid in self._recorded_pids().values() if self._ours(pid)]
        if stale:
            log(f"stopping {len(stale)} leftover process(es) of an earlier run in {self.dir}")
            _terminate(stale, timeout=5)
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        self.ports = None

    # -- lifecycle

    def start(self, timeout: float = 120.0) -> None:
        """Start every component and return once the API is ready and the fake node is Ready."""
        if not build.is_built():
            raise ControlPlaneError("binaries not built: run `make cluster-build` "
                                    f"(cache: {build.bin_dir()})")
        self.clear()
        for d in (self.dir, self.pki, self.logs, self.pids, self.dir / "etcd"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.attached:
            (self.dir / "owner").write_text(f"{os.getpid()} {_start_time(os.getpid())}\n")
        t0 = time.monotonic()
        deadline = t0 + timeout
        self.ports = Ports.pick()
        (self.dir / "ports.json").write_text(json.dumps(asdict(self.ports)) + "\n")
        self._write_pki_and_configs()
        try:
            self._spawn("etcd")
            self._spawn("kube-apiserver")
            self._wait("etcd is healthy", self._etcd_healthy, deadline, "etcd")
            self._wait("kube-apiserver is ready", self._apiserver_ready, deadline, "kube-apiserver")
            self._spawn("kube-controller-manager")
            self._spawn("kube-scheduler")
            self._spawn("kwok")
            self._register_node()
            self._wait(f"node {NODE_NAME} is Ready", self._node_ready, deadline, "kwok")
            self._wait("kube-controller-manager and kube-scheduler are healthy", self._controllers_healthy,
                       deadline, "kube-controller-manager")
            self._wait("the default service account exists", self._default_sa_exists, deadline,
                       "kube-controller-manager")
        except BaseException:
            self.stop(keep_logs=True)
            raise
        log(f"control plane ready in {time.monotonic() - t0:.1f}s at {self.server}")

    def stop(self, keep_logs: bool = False) -> None:
        """Stop the components (reverse start order) and remove the directory (logs kept if asked)."""
        recorded = self._recorded_pids()
        for name in reversed(COMPONENTS):  # one at a time: the API server shuts down slowly without etcd
            if name in recorded and self._ours(recorded[name]):
                _terminate([recorded[name]])
        for p in self._procs.values():
            with contextlib.suppress(Exception):
                p.wait(timeout=1)
        self._procs.clear()
        if keep_logs:
            shutil.rmtree(self.dir / "etcd", ignore_errors=True)
            shutil.rmtree(self.pids, ignore_errors=True)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self, name: str) -> None:
        """SIGKILL one component, as a crash would (fault tests); its state stays, for `revive`."""
        pid = self._recorded_pids()[name]
        if not self._ours(pid):
            raise ControlPlaneError(f"{name} is not running")
        os.kill(pid, signal.SIGKILL)
        proc = self._procs.pop(name, None)
        if proc is not None:
            proc.wait()

    def revive(self, name: str, timeout: float = 120.0) -> None:
        """Start a killed etcd or kube-apiserver again, with its arguments, ports and state; return once it is
        healthy."""
        healthy = {"etcd": self._etcd_healthy, "kube-apiserver": self._apiserver_ready}[name]
        self._spawn(name)
        self._wait(f"{name} is healthy again", healthy, time.monotonic() + timeout, name)

    def rss_bytes(self) -> dict[str, int]:
        """Resident memory of each running component, from /proc."""
        out = {}
        for name, pid in self._recorded_pids().items():
            if self._ours(pid):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[name] = int(line.split()[1]) * 1024
        return out

    def log_tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- plumbing

    def _spawn(self, name: str) -> None:
        binary = self.bin_dir / name
        args = {"etcd": self._etcd_args, "kube-apiserver": self._apiserver_args,
                "kube-controller-manager": self._controller_manager_args,
                "kube-scheduler": self._scheduler_args, "kwok": self._kwok_args}[name]()
        env = {"KWOK_WORKDIR": str(self.dir / "kwok")} if name == "kwok" else {}
        with open(self.logs / f"{name}.log", "ab") as logf:
            proc = subprocess.Popen(
                [str(binary), *args], stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.dir, env={**os.environ, **env}, start_new_session=True,
                # Runs between fork and exec; the harness starts components from one thread only.
                preexec_fn=_die_with_parent if self.attached else None,  # noqa: PLW1509
            )
        self._procs[name] = proc
        (self.pids / f"{name}.pid").write_text(f"{proc.pid}\n")

    def _wait(self, what: str, check, deadline: float, component: str) -> None:
        while True:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise ControlPlaneError(f"{name} exited with {proc.returncode} while waiting until "
                                            f"{what}; its log ({self.logs / (name + '.log')}) ends with:\n"
                                            + self.log_tail(name))
            with contextlib.suppress(OSError, http.client.HTTPException, ssl.SSLError, ValueError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting until {what}; {component} log ends with:\n"
                                        + self.log_tail(component))
            time.sleep(0.1)

    def _ssl(self, client: bool = True, verify: bool = True) -> ssl.SSLContext:
        if verify:
            ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client:
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def request(self, method: str, path: str, body: dict | None = None, port: int | None = None,
                verify: bool = True) -> tuple[int, bytes]:
        """One HTTPS request to the API server (or another component's port) as the cluster admin."""
        assert self.ports is not None
        conn = http.client.HTTPSConnection(LOOPBACK, port or self.ports.apiserver, timeout=5,
                                           context=self._ssl(verify=verify))
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def _etcd_healthy(self) -> bool:
        assert self.ports is not None
        conn = http.client.HTTPConnection(LOOPBACK, self.ports.etcd, timeout=2)
        try:
            conn.request("GET", "/health")
            return json.loads(conn.getresponse().read()).get("health") == "true"
        finally:
            conn.close()

    def _apiserver_ready(self) -> bool:
        return self.request("GET", "/readyz")[0] == 200

    def _controllers_healthy(self) -> bool:
        assert self.ports is not None
        return all(self.request("GET", "/healthz", port=p, verify=False)[0] == 200
                   for p in (self.ports.controller_manager, self.ports.scheduler))

    def _default_sa_exists(self) -> bool:
        return self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    def _node_ready(self) -> bool:
        status, body = self.request("GET", f"/api/v1/nodes/{NODE_NAME}")
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok", "kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": "",
                },
            },
            "status": {
                "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            },
        }
        status, body = self.request("POST", "/api/v1/nodes", node)
        if status not in (201, 409):
            raise ControlPlaneError(f"registering node {NODE_NAME} failed ({status}): {body[:300]!r}")

    # -- configuration

    def _write_pki_and_configs(self) -> None:
        from hack.cluster import pki  # cryptography is only needed once a control plane starts

        ca = pki.CertificateAuthority(self.pki)
        ca.issue("apiserver", "kube-apiserver", server=True, hosts=(
            LOOPBACK, "localhost", SERVICE_FIRST_IP, "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
        ca.issue("admin", "drishti-admin", org="system:masters")
        ca.issue("controller-manager", "system:kube-controller-manager")
        ca.issue("scheduler", "system:kube-scheduler")
        ca.issue("kwok", "kwok", org="system:masters")
        pki.service_account_keys(self.pki)
        pki.CertificateAuthority(self.pki, name="drishti-front-proxy-ca", stem="front-proxy-ca").issue(
            "front-proxy-client", "front-proxy-client")
        self._write_kubeconfig(self.kubeconfig, "admin", embed=True)
        for user in ("controller-manager", "scheduler", "kwok"):
            self._write_kubeconfig(self.dir / f"{user}.kubeconfig", user, embed=False)
        (self.dir / "kwok").mkdir()
        # An explicit, empty configuration: kwok otherwise also reads ~/.kwok/kwok.yaml.
        (self.dir / "kwok" / "kwok.yaml").write_text(
            "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n")

    def _write_kubeconfig(self, path: Path, user: str, embed: bool) -> None:
        def field(kind: str, file: Path) -> dict[str, str]:
            if embed:
                return {f"{kind}-data": base64.b64encode(file.read_bytes()).decode()}
            return {kind: str(file)}

        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "drishti", "cluster": {
                "server": self.server, **field("certificate-authority", self.pki / "ca.crt")}}],
            "users": [{"name": user, "user": {
                **field("client-certificate", self.pki / f"{user}.crt"),
                **field("client-key", self.pki / f"{user}.key")}}],
            "contexts": [{"name": "drishti", "context": {"cluster": "drishti", "user": user}}],
            "current-context": "drishti",
        }
        path.write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML
        path.chmod(0o600)

    def _etcd_args(self) -> list[str]:
        p = self.ports
        assert p is not None
        client, peer = f"http://{LOOPBACK}:{p.etcd}", f"http://{LOOPBACK}:{p.etcd_peer}"
        return [
            "--name=drishti", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=drishti={peer}", "--initial-cluster-state=new",
            "--unsafe-no-fsync",  # throwaway data: no fsync makes every write cheap
            "--quota-backend-bytes=2147483648", "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        p, k = self.ports, self.pki
        assert p is not None
        return [
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={p.apiserver}",
            f"--etcd-servers=http://{LOOPBACK}:{p.etcd}",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={k / 'apiserver.crt'}", f"--tls-private-key-file={k / 'apiserver.key'}",
            f"--client-ca-file={k / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={k / 'sa.pub'}",
            f"--service-account-signing-key-file={k / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # The advertised address is loopback, which Endpoints refuse: keep the `kubernetes` Service
            # without endpoints instead of retrying every 10 seconds (no pod here runs to call it).
            "--endpoint-reconciler-type=none",
            # Front proxy (aggregation layer) configured as kubeadm does, so components find its CA.
            f"--requestheader-client-ca-file={k / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={k / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={k / 'front-proxy-client.key'}",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            "--profiling=false",
            "--v=1",
        ]

    def _component_common(self, user: str, port: int) -> list[str]:
        kc = self.dir / f"{user}.kubeconfig"
        return [
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            f"--bind-address={LOOPBACK}", f"--secure-port={port}",
            f"--cert-dir={self.dir / (user + '-certs')}",
            "--leader-elect=false", "--profiling=false", "--v=1",
        ]

    def _controller_manager_args(self) -> list[str]:
        k = self.pki
        assert self.ports is not None
        return [
            *self._component_common("controller-manager", self.ports.controller_manager),
            f"--service-account-private-key-file={k / 'sa.key'}",
            f"--root-ca-file={k / 'ca.crt'}",
            f"--cluster-signing-cert-file={k / 'ca.crt'}", f"--cluster-signing-key-file={k / 'ca.key'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*",
        ]

    def _scheduler_args(self) -> list[str]:
        assert self.ports is not None
        return self._component_common("scheduler", self.ports.scheduler)

    def _kwok_args(self) -> list[str]:
        assert self.ports is not None
        return [
            f"--config={self.dir / 'kwok' / 'kwok.yaml'}",
            f"--kubeconfig={self.dir / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            f"--server-address={LOOPBACK}:{self.ports.kwok}", f"--node-port={self.ports.kwok}",
            f"--node-ip={LOOPBACK}", f"--cidr={POD_CIDR}",
            "--node-lease-duration-seconds=40",
        ]


# --- ephemeral runs (the test suite's) ----------------------------------------------------------------------

def runs_root() -> Path:
    return Path(tempfile.gettempdir()) / f"drishti-k8s-{os.getuid()}"


def sweep_orphans() -> None:
    """Clear the runs whose owning process is gone (a test session that was killed)."""
    root = runs_root()
    for d in root.glob("run-*") if root.is_dir() else ():
        try:
            pid_s, start = (d / "owner").read_text().split()
            owner_alive = _alive(int(pid_s)) and _start_time(int(pid_s)) == start
        except (OSError, ValueError):
            # No owner yet: a run being set up right now, unless the directory is old.
            with contextlib.suppress(OSError):
                if time.time() - d.stat().st_mtime < 300:
                    continue
            owner_alive = False
        if not owner_alive:
            ControlPlane(d).clear()


def ephemeral() -> ControlPlane:
    """A control plane in a fresh directory owned by this process, after sweeping orphaned runs."""
    sweep_orphans()
    root = runs_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return ControlPlane(Path(tempfile.mkdtemp(prefix="run-", dir=root)), attached=True)
