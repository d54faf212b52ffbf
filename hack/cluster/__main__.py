"""Command line for humans and the Makefile.

    python -m hack.cluster build [--force]   build or reuse the cached binaries; print their directory
    python -m hack.cluster up                start the control plane in .cache/cluster
                                             (or $DRISHTI_CLUSTER_DIR)
    python -m hack.cluster down              stop it and remove its state
    python -m hack.cluster status            what runs, on which port, with how much memory
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hack.cluster import build
from hack.cluster.controlplane import COMPONENTS, ControlPlane, ControlPlaneError

REPO = Path(__file__).resolve().parents[2]


def cluster_dir() -> Path:
    return Path(os.environ.get("DRISHTI_CLUSTER_DIR") or REPO / ".cache" / "cluster")


def _export_line(cp: ControlPlane) -> str:
    return f"export KUBECONFIG={cp.kubeconfig}"


def cmd_build(args: argparse.Namespace) -> int:
    print(build.ensure_built(force=args.force))
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    cp = ControlPlane(cluster_dir(), attached=False)
    running = cp.running_components()
    if cp.ports is not None and set(running) == set(COMPONENTS) and cp.kubeconfig.is_file():
        print(f"control plane already running at {cp.server}")
        print(_export_line(cp))
        return 0
    if running:
        missing = sorted(set(COMPONENTS) - set(running))
        print(f"found a partly running control plane in {cp.dir} (not running: {', '.join(missing)}); "
              "restarting it")
    build.ensure_built()
    t0 = time.monotonic()
    try:
        cp.start()
    except ControlPlaneError as exc:
        print(f"cluster-up failed: {exc}", file=sys.stderr)
        print(f"logs: {cp.logs}", file=sys.stderr)
        return 1
    print(f"control plane ready in {time.monotonic() - t0:.1f}s at {cp.server}; logs in {cp.logs}")
    print(_export_line(cp))
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cp = ControlPlane(cluster_dir(), attached=False)
    running = cp.running_components()
    cp.stop()
    print(f"stopped {', '.join(running) if running else 'nothing (no control plane was running)'}; "
          f"removed {cp.dir}")
    print("unset KUBECONFIG")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cp = ControlPlane(cluster_dir(), attached=False)
    running = cp.running_components()
    if not running:
        print(f"no control plane running in {cp.dir}")
        return 1
    rss = cp.rss_bytes()
    for name in COMPONENTS:
        state = (f"rss {rss[name] / 2**20:7.1f} MiB" if name in rss
                 else "NOT RUNNING (make cluster-up restarts)")
        print(f"{name:24} {state}")
    print(f"{'total':24} rss {sum(rss.values()) / 2**20:7.1f} MiB")
    print(f"server {cp.server}")
    print(_export_line(cp))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or reuse the cached control-plane binaries")
    b.add_argument("--force", action="store_true", help="rebuild even when the cache is complete")
    b.set_defaults(func=cmd_build)
    sub.add_parser("up", help="start a control plane for humans").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop it").set_defaults(func=cmd_down)
    sub.add_parser("status", help="show it").set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
