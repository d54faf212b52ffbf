#!/usr/bin/env bash
# Remove what the project left in Docker, and nothing of anyone else's: only images and containers that carry
# a project label (io.drishti.project on the images of the one Dockerfile and their build stages,
# io.drishti.base.version on the base image, io.drishti.kind-node.version on the kind node image).
#
#   hack/docker/prune.sh          # untagged images of the project (earlier builds, left without a tag)
#   hack/docker/prune.sh --all    # every image and stopped container of the project, tagged or not
#
# Without a running engine there is nothing to remove: it says so and succeeds.
set -euo pipefail

LABELS=(io.drishti.project io.drishti.base.version io.drishti.kind-node.version)

log() { printf 'prune: %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
  log "no Docker engine answers: nothing to remove"
  exit 0
fi

all=""
case "${1:-}" in
  "") ;;
  --all) all=1 ;;
  *) log "usage: $0 [--all]"; exit 2 ;;
esac

for label in "${LABELS[@]}"; do
  if [ -n "$all" ]; then
    docker container prune --force --filter "label=$label" >&2
    mapfile -t images < <(docker images --quiet --filter "label=$label" | sort -u)
    if [ "${#images[@]}" -gt 0 ]; then docker rmi --force "${images[@]}" >&2 || true; fi
  else
    docker image prune --force --filter "label=$label" >&2
  fi
done
