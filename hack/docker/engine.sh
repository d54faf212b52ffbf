#!/usr/bin/env bash
# Ensure a working Docker Engine on this machine, idempotently.
#
#   hack/docker/engine.sh            # install (if needed), start (if needed), wait until `docker info` works
#
# 1. `docker info` already works: nothing to do.
# 2. No `dockerd`: install Debian's docker.io (with containerd, runc, tini, iptables) from the apt mirror.
#    The package's init script is kept from starting the daemon during the install (policy-rc.d), so that
#    the daemon is always started below, with flags chosen for this machine.
# 3. Start dockerd in the background (there is no systemd here), logging to $DRISHTI_CACHE_DIR/docker/dockerd.log,
#    and wait until `docker info` answers.
#
# Daemon flags are chosen by probing the kernel rather than assumed:
#   storage driver  overlay2 if an overlay mount works, else fuse-overlayfs (if /dev/fuse and the binary exist),
#                   else vfs (slow and large, but works anywhere);
#   iptables        on if `iptables -t nat -S` works, else --iptables=false --ip-masq=false;
#   bridge          docker0 if a bridge link can be created, else --bridge=none (then run containers with
#                   --network host and build with --network host or none).
# On the sandbox this was written on (Firecracker VM, kernel 6.18 with overlay, bridge, veth, nf_tables and
# iptables built in, no loadable modules, hybrid cgroup v1, root with all capabilities) every probe passed:
# overlay2 + iptables (nft backend) + docker0 bridge, i.e. no special flags. See hack/docker/README.md.
#
# Environment:
#   DRISHTI_CACHE_DIR       cache root (default ~/.cache/drishti); the daemon log and chosen flags go to docker/
#   DRISHTI_DOCKERD_FLAGS   use exactly these dockerd flags instead of probing
#   DRISHTI_DOCKERD_WAIT    seconds to wait for the daemon (default 60)
set -euo pipefail

CACHE_DIR="${DRISHTI_CACHE_DIR:-$HOME/.cache/drishti}"
STATE_DIR="$CACHE_DIR/docker"
LOG="$STATE_DIR/dockerd.log"
WAIT="${DRISHTI_DOCKERD_WAIT:-60}"

log() { printf 'engine: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  log "Docker Engine is ready ($(docker info --format '{{.ServerVersion}}, storage {{.Driver}}' 2>/dev/null))"
  exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_engine() {
  log "installing Debian's docker.io"
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    # Keep invoke-rc.d from starting the daemon with the package's defaults during the install.
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    created_policy=1
  fi
  local rc=0
  as_root apt-get update -q || rc=$?
  if [ "$rc" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      docker.io containerd runc tini iptables ca-certificates xz-utils || rc=$?
  fi
  if [ -n "$created_policy" ]; then as_root rm -f "$policy"; fi
  return "$rc"
}

# --- probes: each prints the flags it needs ---------------------------------------------------------------------

probe_storage() {
  local d
  d="$(mktemp -d)"
  mkdir -p "$d/lower" "$d/upper" "$d/work" "$d/merged"
  if as_root mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" 2>/dev/null; then
    as_root umount "$d/merged"
    rm -rf "$d"
    echo "--storage-driver=overlay2"
    return
  fi
  rm -rf "$d"
  if [ -c /dev/fuse ] && command -v fuse-overlayfs >/dev/null 2>&1; then
    echo "--storage-driver=fuse-overlayfs"
  else
    echo "--storage-driver=vfs"
  fi
}

probe_network() {
  local iptables_ok=1 bridge_ok=1
  as_root iptables -t nat -S >/dev/null 2>&1 || iptables_ok=0
  if ip link show docker0 >/dev/null 2>&1; then
    :
  elif as_root ip link add drishti-probe0 type bridge 2>/dev/null; then
    as_root ip link del drishti-probe0
  else
    bridge_ok=0
  fi
  local flags=""
  [ "$iptables_ok" -eq 1 ] || flags="--iptables=false --ip-masq=false"
  [ "$bridge_ok" -eq 1 ] || flags="$flags --bridge=none"
  echo "$flags"
}

dockerd_running() { pidof dockerd >/dev/null 2>&1 || pgrep -x dockerd >/dev/null 2>&1; }

wait_ready() {
  local i
  for ((i = 0; i < WAIT * 2; i++)); do
    if docker info >/dev/null 2>&1; then return 0; fi
    if ! dockerd_running; then return 1; fi
    sleep 0.5
  done
  return 1
}

# --- main -------------------------------------------------------------------------------------------------------

if ! command -v dockerd >/dev/null 2>&1; then
  install_engine
fi

mkdir -p "$STATE_DIR"
if ! dockerd_running; then
  if [ -n "${DRISHTI_DOCKERD_FLAGS:-}" ]; then
    flags="$DRISHTI_DOCKERD_FLAGS"
  else
    flags="$(probe_storage) $(probe_network)"
  fi
  read -r -d '' -a flag_list <<<"$flags" || true
  echo "${flag_list[*]}" >"$STATE_DIR/dockerd.flags"
  log "starting dockerd ${flag_list[*]} (log: $LOG)"
  # A stale pid file from a daemon that died with the machine keeps dockerd from starting.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    as_root rm -f /var/run/docker.pid
  fi
  # setsid: the daemon outlives this script and its caller's process group. It must not inherit the caller's
  # descriptors either: a lock a calling script holds (build-images.sh's flock) would live as long as the daemon.
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    if [ "$(id -u)" -eq 0 ]; then
      exec setsid dockerd "${flag_list[@]}" >>"$LOG" 2>&1 </dev/null
    fi
    exec sudo setsid dockerd "${flag_list[@]}" >>"$LOG" 2>&1 </dev/null
  ) &
fi

if ! wait_ready; then
  log "dockerd did not become ready within ${WAIT}s; last lines of $LOG:"
  tail -n 30 "$LOG" >&2 || true
  exit 1
fi
log "Docker Engine is ready ($(docker info --format '{{.ServerVersion}}, storage {{.Driver}}' 2>/dev/null))"
