"""`python -m hack.delivery [--check]`: regenerate (or check) the chart's derived files and manifests/."""

from __future__ import annotations

import argparse
import sys

from hack.delivery import generate


def unexpected(files: dict) -> list:
    """Generated-looking files in manifests/ that the generator no longer writes."""
    known = set(files)
    return sorted(path for path in generate.MANIFESTS.rglob("*.yaml") if path not in known)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hack.delivery",
                                     description=generate.__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is stale")
    args = parser.parse_args(argv)
    files = generate.expected()
    extra = unexpected(files)
    if args.check:
        stale = generate.stale(files)
        for path in stale:
            print(f"stale: {path.relative_to(generate.REPO)}", file=sys.stderr)
        for path in extra:
            print(f"not generated (remove it): {path.relative_to(generate.REPO)}", file=sys.stderr)
        if stale or extra:
            print("run `make manifests` to regenerate", file=sys.stderr)
            return 1
        print(f"{len(files)} generated files up to date")
        return 0
    for path in generate.write(files):
        print(f"wrote {path.relative_to(generate.REPO)}")
    for path in extra:
        path.unlink()
        print(f"removed {path.relative_to(generate.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
