"""`python -m drishti_operator` / `drishti-operator`: run the VirtualCamera operator.

Configured by flags or, for containers, by the environment (a flag wins over its variable):

  DRISHTI_OPERATOR_NAMESPACES     comma-separated namespaces (globs allowed) to serve; unset = all namespaces
  DRISHTI_OPERATOR_PEERING        a KopfPeering name: run several replicas, one active at a time (needs the
                                  peering CRDs of Kopf); unset = standalone (run exactly one replica)
  DRISHTI_OPERATOR_LIVENESS       liveness endpoint, default http://0.0.0.0:8080/healthz; `off` disables it
  DRISHTI_OPERATOR_LOG_FORMAT     full (default), plain or json
  DRISHTI_OPERATOR_CAMERA_IMAGE   camera image for cameras without spec.image (default drishti/stream:dev)
  DRISHTI_OPERATOR_WORKERS        concurrent API calls (default 8)
  OTEL_*                          OpenTelemetry exporting of the reconcile spans (off unless set)
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_LIVENESS = "http://0.0.0.0:8080/healthz"
# The modules of pyproject's `operator` extra, which a plain `pip install drishti-stream` leaves out.
OPERATOR_EXTRA = ("kopf", "kubernetes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from drishti_operator import __version__

    env = os.environ
    parser = argparse.ArgumentParser(
        prog="drishti-operator",
        description="Runs one camera Deployment and Service per VirtualCamera resource.",
        epilog="Environment: see `pydoc drishti_operator.__main__`.",
    )
    parser.add_argument("--version", action="version", version=f"drishti-operator {__version__}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", dest="namespaces", action="append", metavar="NAMESPACE",
                       help="serve this namespace (repeatable; globs allowed)")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="serve every namespace (default)")
    parser.add_argument("--peering", default=env.get("DRISHTI_OPERATOR_PEERING") or None, metavar="NAME",
                        help="coordinate replicas through this KopfPeering (default: standalone)")
    parser.add_argument("--priority", type=int, default=None, help="peering priority of this replica")
    parser.add_argument("--liveness", default=env.get("DRISHTI_OPERATOR_LIVENESS") or DEFAULT_LIVENESS,
                        metavar="URL", help=f"liveness endpoint (default {DEFAULT_LIVENESS}; 'off' disables)")
    parser.add_argument("--log-format", choices=["full", "plain", "json"],
                        default=env.get("DRISHTI_OPERATOR_LOG_FORMAT") or "full")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs of the operator")
    parser.add_argument("--debug", action="store_true", help="debug logs of everything, asyncio included")
    args = parser.parse_args(argv)
    if not args.namespaces and not args.all_namespaces:
        listed = [ns.strip() for ns in env.get("DRISHTI_OPERATOR_NAMESPACES", "").split(",") if ns.strip()]
        args.namespaces = listed or None
    args.all_namespaces = not args.namespaces
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import kopf

        from drishti_operator import handlers, tracing  # noqa: F401  (importing registers the handlers)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in OPERATOR_EXTRA:
            raise
        sys.exit(f"drishti-operator: module {exc.name!r} is missing; install the operator's dependencies "
                 "with pip install 'drishti-stream[operator]'")

    log_format = kopf.LogFormat[args.log_format.upper()]
    # Plain and full lines carry the camera as a `[namespace/name]` prefix; JSON lines carry it as fields.
    kopf.configure(verbose=args.verbose, debug=args.debug, log_format=log_format,
                   log_prefix=log_format != kopf.LogFormat.JSON)
    tracing.configure()
    liveness = None if args.liveness.strip().lower() in ("", "off", "none") else args.liveness
    try:
        kopf.run(
            clusterwide=args.all_namespaces,
            namespaces=args.namespaces or (),
            standalone=args.peering is None,
            peering_name=args.peering,
            priority=args.priority,
            liveness_endpoint=liveness,
        )
    finally:
        tracing.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
