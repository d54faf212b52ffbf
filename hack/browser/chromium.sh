#!/usr/bin/env bash
# Ensure a headless-capable Chromium for the browser checks of the tests, idempotently; print its path.
#
#   hack/browser/chromium.sh        # prints e.g. /usr/bin/chromium
#
# Uses a Chromium already on PATH (chromium, chromium-browser) or DRISHTI_CHROMIUM; otherwise installs Debian's
# `chromium` package from the apt mirror (as root, or through sudo). Where neither works it fails with the reason:
# a browser check that cannot run must fail, never be skipped.
set -euo pipefail

log() { printf 'chromium: %s\n' "$*" >&2; }

find_chromium() {
  if [ -n "${DRISHTI_CHROMIUM:-}" ]; then command -v "$DRISHTI_CHROMIUM"; return; fi
  command -v chromium || command -v chromium-browser
}

if path="$(find_chromium)"; then
  printf '%s\n' "$path"
  exit 0
fi
if [ -n "${DRISHTI_CHROMIUM:-}" ]; then
  log "DRISHTI_CHROMIUM=$DRISHTI_CHROMIUM is not an executable"
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  log "no chromium on PATH and no apt-get to install it: install Chromium, or name it with DRISHTI_CHROMIUM"
  exit 1
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

log "installing Debian's chromium"
as_root apt-get update -q >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
find_chromium
