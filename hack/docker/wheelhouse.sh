#!/usr/bin/env bash
# Gather, on the host, every third-party wheel the images install, so that `docker build` needs no network.
#
#   hack/docker/wheelhouse.sh [DEST]      # DEST defaults to build/wheelhouse (gitignored, in the build context)
#
# DEST then holds:
#   *.whl                        binary wheels for the image's Python (3.11, CPython) on manylinux <= glibc 2.36
#                                (Debian bookworm's), for this machine's architecture; never sdists, so nothing
#                                is compiled on the host or in the build
#   requirements-operator.txt    exact pins: the project's dependencies plus its `operator` extra
#   requirements-service.txt     exact pins: the project's dependencies, at the same versions as the operator's
#   requirements-build.txt       exact pins: the build backend ([build-system].requires), so the Dockerfile builds
#                                the project from source with `pip install --no-index --find-links`
# Requirements are read from pyproject.toml; the project itself is not in the wheelhouse (the image builds it).
#
# Cached under $DRISHTI_CACHE_DIR/wheelhouse/<key>, where the key hashes the requirements and the target, so the
# download happens once per dependency change and a fresh clone on the same machine starts warm.
#
# Environment:
#   PYTHON                  host interpreter with pip (default python3); only runs pip, targets are explicit
#   DRISHTI_CACHE_DIR       cache root (default ~/.cache/drishti)
#   DRISHTI_IMAGE_PYTHON    target Python major.minor (default 3.11: Debian bookworm's and python:3.11-slim's)
#   DRISHTI_IMAGE_GLIBC     newest glibc the target may need (default 2.36: Debian bookworm's)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DEST="${1:-$ROOT/build/wheelhouse}"
PY="${PYTHON:-python3}"
CACHE_DIR="${DRISHTI_CACHE_DIR:-$HOME/.cache/drishti}"
PY_VERSION="${DRISHTI_IMAGE_PYTHON:-3.11}"
GLIBC="${DRISHTI_IMAGE_GLIBC:-2.36}"
ARCH="$(uname -m)"
REVISION=1   # bump when what this script puts in a wheelhouse changes

log() { printf 'wheelhouse: %s\n' "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The project's requirements, straight from pyproject.toml.
"$PY" - "$ROOT/pyproject.toml" "$work" <<'PYEOF'
import sys, tomllib
from pathlib import Path
meta = tomllib.loads(Path(sys.argv[1]).read_text())
out = Path(sys.argv[2])
deps = meta["project"]["dependencies"]
operator = meta["project"].get("optional-dependencies", {}).get("operator", [])
(out / "service.in").write_text("\n".join(deps) + "\n")
(out / "operator.in").write_text("\n".join(deps + operator) + "\n")
(out / "build.in").write_text("\n".join(meta["build-system"]["requires"]) + "\n")
PYEOF

# The target: CPython $PY_VERSION, manylinux tags from glibc $GLIBC down to 2.17 (and the legacy aliases).
glibc_minor="${GLIBC#2.}"
target=(--only-binary=:all: --implementation cp --python-version "$PY_VERSION"
        --abi "cp${PY_VERSION/./}" --abi abi3 --abi none)
for ((m = glibc_minor; m >= 17; m--)); do target+=(--platform "manylinux_2_${m}_${ARCH}"); done
target+=(--platform "manylinux2014_${ARCH}" --platform "manylinux2010_${ARCH}" --platform "manylinux1_${ARCH}")

key="$(cat "$work/service.in" "$work/operator.in" "$work/build.in" | { cat; echo "$PY_VERSION $GLIBC $ARCH $REVISION"; } |
  sha256sum | cut -c1-12)"
cache="$CACHE_DIR/wheelhouse/cp${PY_VERSION/./}-$ARCH-glibc$GLIBC-$key"

# name==version for every wheel in a directory (wheel file names: name-version(-build)?-py-abi-platform.whl).
pins() {
  local f
  for f in "$1"/*.whl; do
    f="$(basename "$f")"
    printf '%s==%s\n' "$(echo "${f%%-*}" | tr '_.' '--' | tr '[:upper:]' '[:lower:]')" "$(echo "$f" | cut -d- -f2)"
  done | sort
}

download() {  # download DIR REQUIREMENTS [pip args...]
  local dir="$1" reqs="$2"
  shift 2
  "$PY" -m pip download --quiet --disable-pip-version-check "${target[@]}" -d "$dir" -r "$reqs" "$@"
}

if [ ! -f "$cache/.complete" ]; then
  mkdir -p "$CACHE_DIR/wheelhouse"
  exec 9>"$CACHE_DIR/wheelhouse/.lock"
  flock 9
fi
if [ ! -f "$cache/.complete" ]; then
  log "downloading wheels for CPython $PY_VERSION, manylinux <= glibc $GLIBC, $ARCH"
  download "$work/operator" "$work/operator.in"
  pins "$work/operator" >"$work/requirements-operator.txt"
  # The service resolves within the operator's pins: both images carry the same versions.
  download "$work/service" "$work/service.in" -c "$work/requirements-operator.txt"
  pins "$work/service" >"$work/requirements-service.txt"
  download "$work/build" "$work/build.in"
  pins "$work/build" >"$work/requirements-build.txt"
  mkdir -p "$work/wheels"
  cp -n "$work"/operator/*.whl "$work"/service/*.whl "$work"/build/*.whl "$work/wheels/"
  cp "$work"/requirements-*.txt "$work/wheels/"
  rm -rf "$cache"
  mv "$work/wheels" "$cache"
  touch "$cache/.complete"
  log "cached $(find "$cache" -name "*.whl" | wc -l) wheels ($(du -sh "$cache" | cut -f1)) in $cache"
else
  log "using cached $cache"
fi

rm -rf "$DEST"
mkdir -p "$DEST"
# Hard links when the cache is on the same file system, copies otherwise.
cp -l "$cache"/*.whl "$cache"/requirements-*.txt "$DEST/" 2>/dev/null ||
  cp "$cache"/*.whl "$cache"/requirements-*.txt "$DEST/"
log "$DEST: $(find "$DEST" -name "*.whl" | wc -l) wheels"
