"""Command line for humans and the Makefile.

    python -m hack.kind build            build (or find up to date) the node image; print its reference
    python -m hack.kind up [--name N]    the node image, a cluster from hack/kind/cluster.yaml, project images
    python -m hack.kind down [--name N]  delete the cluster

The cluster is named ``drishti`` unless ``--name`` or ``$DRISHTI_KIND_CLUSTER`` says otherwise; its kubectl
context is ``kind-<name>``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from hack.kind import cluster, images


def cmd_build(args: argparse.Namespace) -> int:
    print(images.ensure_node_image())
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    try:
        cluster.up(args.name)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"kind-up failed: {exc}", file=sys.stderr)
        return 1
    print(f"cluster {args.name} ready in {time.monotonic() - t0:.0f}s, "
          f"with {' and '.join(cluster.PROJECT_IMAGES)}")
    print(f"  kubectl --context kind-{args.name} get nodes")
    print("  helm install drishti charts/drishti -n drishti-system --create-namespace"
          f" --kube-context kind-{args.name} --set operator.image.tag=dev --set camera.image.tag=dev")
    print(f"  make kind-down     # or: python -m hack.kind down --name {args.name}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    cluster.down(args.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.kind", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the node image").set_defaults(func=cmd_build)
    for name, func, text in (("up", cmd_up, "create (or reuse) the cluster"),
                             ("down", cmd_down, "delete it")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--name", default=os.environ.get("DRISHTI_KIND_CLUSTER", "drishti"))
        p.set_defaults(func=func)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
