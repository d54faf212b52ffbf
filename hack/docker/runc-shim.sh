#!/bin/sh
# runc, minus what this kernel will not grant: dockerd's default runtime on hosts whose capability bounding set
# lacks CAP_SYS_RESOURCE (engine.sh registers it there, and only there).
#
# Docker 20.10 (Debian bookworm's docker.io) gives a --privileged container every capability the kernel knows,
# and `docker exec` into one asks for the same set. When the daemon itself may not hold CAP_SYS_RESOURCE, runc then
# fails with "unable to apply caps: operation not permitted"; a negative oomScoreAdj fails the same way. kind nodes
# are privileged containers entered with `docker exec`, so neither would work. This wrapper edits the OCI document
# runc is about to apply, then runs the real runc with the same arguments:
#   create / run   the bundle's config.json (--bundle DIR, else the working directory)
#   exec           the --process FILE
# removing CAP_SYS_RESOURCE from every capability set and raising a negative oomScoreAdj to 0. Everything else
# passes through untouched. Needs jq (engine.sh installs it).
set -eu

RUNC="${DRISHTI_REAL_RUNC:-runc}"
command=""
bundle=""
process=""
previous=""
for arg in "$@"; do
  case "$previous" in
    --bundle | -b) bundle="$arg" ;;
    --process | -p) process="$arg" ;;
  esac
  case "$arg" in
    --bundle=*) bundle="${arg#--bundle=}" ;;
    --process=*) process="${arg#--process=}" ;;
  esac
  if [ -z "$command" ]; then
    case "$arg" in create | run | exec) command="$arg" ;; esac
  fi
  previous="$arg"
done

# $1: a JSON file; $2: the path of its Process object ("." for a process file, ".process" for a config.json).
sanitize() {
  grep -q 'CAP_SYS_RESOURCE\|"oomScoreAdj": *-' "$1" || return 0
  tmp="$1.drishti-runc.$$"
  jq --arg p "$2" '
    ($p | if . == "." then [] else ltrimstr(".") | split(".") end) as $path
    | if getpath($path + ["capabilities"]) then
        setpath($path + ["capabilities"];
                getpath($path + ["capabilities"]) | map_values(map(select(. != "CAP_SYS_RESOURCE"))))
      else . end
    | if (getpath($path + ["oomScoreAdj"]) // 0) < 0 then setpath($path + ["oomScoreAdj"]; 0) else . end
  ' "$1" >"$tmp"
  mv "$tmp" "$1"
}

case "$command" in
  create | run) sanitize "${bundle:-.}/config.json" .process ;;
  exec) if [ -n "$process" ]; then sanitize "$process" .; fi ;;
esac
exec "$RUNC" "$@"
