#!/usr/bin/env bash
# Build the project's images offline: engine, base image, wheelhouse, then each Dockerfile target.
#
#   hack/docker/build-images.sh                 # both images: drishti/operator:dev and drishti/stream:dev
#   hack/docker/build-images.sh service         # only the camera (targets: service, operator)
#
# Every step is cached (see each script), so a second run takes seconds. Build output goes to stderr; stdout gets
# one line per image built: its reference. The builds run with `--network none`: nothing inside them may fetch.
# Each target's dependency stage is tagged drishti/build-cache:deps-<target>, the build cache; what a build leaves
# untagged (an earlier image of the same tag) is removed afterwards by prune.sh, which touches only the project's.
#
# Environment:
#   DRISHTI_BASE_IMAGE       base image (default: build drishti/base:bookworm-py311 with base-image.sh; set it to
#                            e.g. python:3.11-slim where a registry is reachable)
#   DRISHTI_STREAM_IMAGE     tag of the service image (default drishti/stream:dev)
#   DRISHTI_OPERATOR_IMAGE   tag of the operator image (default drishti/operator:dev)
#   DRISHTI_CACHE_DIR        cache root for every step (default ~/.cache/drishti)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STREAM_IMAGE="${DRISHTI_STREAM_IMAGE:-drishti/stream:dev}"
OPERATOR_IMAGE="${DRISHTI_OPERATOR_IMAGE:-drishti/operator:dev}"
CACHE_IMAGE=drishti/build-cache
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(operator service)

log() { printf 'build-images: %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

for target in "${targets[@]}"; do
  case "$target" in
    service | operator) ;;
    *) log "unknown target '$target' (service, operator)"; exit 2 ;;
  esac
done

t="$(now)"
"$HERE/engine.sh"
log "engine: $(since "$t")"

if [ -n "${DRISHTI_BASE_IMAGE:-}" ]; then
  base="$DRISHTI_BASE_IMAGE"
else
  t="$(now)"
  base="$("$HERE/base-image.sh")"
  log "base image $base: $(since "$t")"
fi

# From here on, one build per work tree at a time: the wheelhouse in build/ is rewritten by each run.
mkdir -p "$ROOT/build"
exec 9>"$ROOT/build/.build-images.lock"
if ! flock -w 900 9; then
  log "another process has held $ROOT/build/.build-images.lock for 15 minutes (a build, or a child it left running)"
  exit 1
fi

t="$(now)"
"$HERE/wheelhouse.sh" "$ROOT/build/wheelhouse"
log "wheelhouse: $(since "$t")"

# Image metadata: the package version, the commit (marked dirty when the packaged sources have local changes),
# and the commit's time rather than the build's, so that rebuilding one commit gives the same labels.
version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
  "$ROOT/pyproject.toml")"
revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain -- pyproject.toml service operator Dockerfile 2>/dev/null)" ]; then
  revision="$revision-dirty"
fi
created="$(git -C "$ROOT" log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"

# The classic builder unless buildx is installed (Debian bookworm's docker.io has no buildx); the Dockerfile
# works with both.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

for target in "${targets[@]}"; do
  case "$target" in
    service) tag="$STREAM_IMAGE" ;;
    operator) tag="$OPERATOR_IMAGE" ;;
  esac
  t="$(now)"
  # The target's dependencies, tagged, so that they stay the build cache when untagged images are pruned below.
  docker build --network none --force-rm --target "deps-$target" --tag "$CACHE_IMAGE:deps-$target" \
    --build-arg BASE_IMAGE="$base" "$ROOT" >&2
  docker build --network none --force-rm --target "$target" --tag "$tag" \
    --build-arg BASE_IMAGE="$base" \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.created="$created" \
    "$ROOT" >&2
  log "$tag: $(since "$t"), $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
  echo "$tag"
done

# What the builds left without a tag (the previous images of these tags, the stage that copies the sources).
"$HERE/prune.sh"
