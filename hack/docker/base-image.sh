#!/usr/bin/env bash
# Build the project's base image offline: Debian bookworm (minbase) + Python 3.11, bootstrapped from the Debian
# mirror that apt uses on this machine and imported into Docker. No container registry is needed.
#
#   hack/docker/base-image.sh              # prints the image reference on stdout when done
#
# Idempotent and cached, in three levels:
#   1. the image $BASE_TAG exists with our version label: nothing to do;
#   2. the rootfs tarball $DRISHTI_CACHE_DIR/images/drishti-base-<version>.tar.gz exists: `docker import` it;
#   3. otherwise debootstrap the rootfs, apply bookworm-updates and bookworm-security, trim it, tar it, import it.
# The version string names the suite, the Python and a hash of the package list and of this recipe's revision,
# so a change to either builds a new base, while a fresh clone on the same machine starts warm.
#
# What the image holds, and why:
#   python3, python3-venv   bookworm's CPython 3.11 (the project needs >= 3.11) and venv/ensurepip for the build stage;
#   ca-certificates         TLS to gs:// and https:// video sources;
#   nothing for OpenCV      opencv-python-headless wheels bundle their codecs; what they link outside the wheel
#                           (libc, libm, libz, libstdc++, libgcc_s) is already in minbase. No libglib, no libGL.
#
# Environment:
#   DRISHTI_CACHE_DIR       cache root (default ~/.cache/drishti); tarballs go to images/
#   DRISHTI_DEBIAN_MIRROR   Debian mirror (default: the one apt uses here, else http://deb.debian.org/debian)
#   DRISHTI_DEBIAN_SECURITY Debian security mirror (default: the one apt uses here, else .../debian-security)
#   DRISHTI_BASE_TAG        image tag (default drishti/base:bookworm-py311)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE_DIR="${DRISHTI_CACHE_DIR:-$HOME/.cache/drishti}"
IMAGES_DIR="$CACHE_DIR/images"
SUITE=bookworm
PACKAGES="python3,python3-venv,ca-certificates"
RECIPE_REVISION=1   # bump when the steps below change what ends up in the rootfs
BASE_TAG="${DRISHTI_BASE_TAG:-drishti/base:bookworm-py311}"
ARCH="$(dpkg --print-architecture)"
VERSION="$SUITE-py311-$ARCH-$(printf '%s|%s' "$PACKAGES" "$RECIPE_REVISION" | sha256sum | cut -c1-10)"
TARBALL="$IMAGES_DIR/drishti-base-$VERSION.tar.gz"
LABEL=io.drishti.base.version

log() { printf 'base-image: %s\n' "$*" >&2; }

"$HERE/engine.sh"

if [ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$BASE_TAG" 2>/dev/null)" = "$VERSION" ]; then
  log "$BASE_TAG is up to date ($VERSION)"
  echo "$BASE_TAG"
  exit 0
fi

mkdir -p "$IMAGES_DIR"
# One build at a time per cache: a second caller waits, then finds the tarball.
exec 9>"$IMAGES_DIR/.base-image.lock"
flock 9

# The mirror apt uses here: the URIs of the deb822 stanza (or the one-line entry) that serves $1.
apt_mirror() {
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '
      /^[[:space:]]*$/ { if (u != "" && hit) { print u; exit } u = ""; hit = 0; next }
      /^URIs:/ { u = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) hit = 1 }
      END { if (u != "" && hit) print u }' "$f" | head -n 1
  done
  if [ -f /etc/apt/sources.list ]; then
    awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' /etc/apt/sources.list
  fi
}

build_rootfs() {
  local mirror security work rootfs
  mirror="${DRISHTI_DEBIAN_MIRROR:-$(apt_mirror "$SUITE" | head -n 1)}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${DRISHTI_DEBIAN_SECURITY:-$(apt_mirror "$SUITE-security" | head -n 1)}"
  security="${security:-http://deb.debian.org/debian-security}"

  if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -q && apt-get install -y -q --no-install-recommends debootstrap; }
  fi

  work="$(mktemp -d "$IMAGES_DIR/.build.XXXXXX")"
  # shellcheck disable=SC2064
  trap "umount -R '$work/rootfs/proc' 2>/dev/null || true; rm -rf '$work'" EXIT
  rootfs="$work/rootfs"

  log "debootstrap $SUITE (minbase) from $mirror with $PACKAGES"
  debootstrap --variant=minbase --arch="$ARCH" --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 40 "$work/debootstrap.log" >&2; return 1; }

  log "applying $SUITE-updates and $SUITE-security"
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
SOURCES
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -q && apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade && apt-get clean' \
    >"$work/upgrade.log" 2>&1 || { tail -n 40 "$work/upgrade.log" >&2; return 1; }
  umount "$rootfs/proc"

  log "trimming the rootfs"
  # No package index, caches, logs, manuals or translations in an image; copyright files stay.
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$rootfs/usr/lib/python3" "$rootfs/usr/lib/python3.11" -name __pycache__ -type d -prune -exec rm -rf {} +

  log "packing $TARBALL"
  tar --numeric-owner --xattrs -C "$rootfs" -cf - . | gzip -6 >"$work/rootfs.tar.gz"
  mv "$work/rootfs.tar.gz" "$TARBALL"
  rm -rf "$work"
  trap - EXIT
}

if [ ! -s "$TARBALL" ]; then
  build_rootfs
else
  log "using cached $TARBALL"
fi

log "importing $BASE_TAG"
docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" \
  --change "CMD [\"python3\"]" \
  --change "LABEL $LABEL=$VERSION" \
  --change "LABEL org.opencontainers.image.title=drishti-base" \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase with Python 3.11\"" \
  --change "LABEL org.opencontainers.image.version=$VERSION" \
  --message "debootstrap $SUITE minbase + $PACKAGES" \
  "$TARBALL" "$BASE_TAG" >/dev/null
docker tag "$BASE_TAG" "${BASE_TAG%:*}:$VERSION"
log "$BASE_TAG ready ($VERSION, $(docker image inspect --format '{{.Size}}' "$BASE_TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "$BASE_TAG"
