#!/usr/bin/env bash
# Ensure a working Docker Engine on this machine, idempotently.
#
#   hack/docker/engine.sh            # install (if needed), start (if needed), wait until `docker info` works
#   hack/docker/engine.sh --stop     # stop the daemon this script started, if it runs
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
# iptables built in, no loadable modules, hybrid cgroup v1) every probe passed: overlay2 + iptables (nft backend) +
# docker0 bridge. See hack/docker/README.md.
#
# One more flag where the kernel withholds a capability: when CAP_SYS_RESOURCE is missing from the bounding set
# (a Firecracker VM here), Docker 20.10 cannot start any --privileged container (kind's nodes) nor `docker exec`
# into one. Then runc-shim.sh, copied to $DRISHTI_CACHE_DIR/docker/drishti-runc, becomes the default runtime
# (--add-runtime drishti-runc=... --default-runtime drishti-runc). A daemon this script started earlier without
# it is restarted with it; someone else's daemon is left alone, with a warning.
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

SHIM="$STATE_DIR/drishti-runc"

log() { printf 'engine: %s\n' "$*" >&2; }

# CAP_SYS_RESOURCE is capability 24.
lacks_sys_resource() { (( ((16#$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)) >> 24 & 1) == 0 )); }
default_runtime() { docker info --format '{{.DefaultRuntime}}' 2>/dev/null; }
ready_line() { docker info --format '{{.ServerVersion}}, storage {{.Driver}}, runtime {{.DefaultRuntime}}' 2>/dev/null; }

# --stop: stop the daemon this script started (make clean-cache, before its state directory goes); any other
# daemon is left running.
if [ "${1:-}" = --stop ]; then
  pid="$(cat "$STATE_DIR/dockerd.pid" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ "$(cat /var/run/docker.pid 2>/dev/null)" = "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    log "stopped the dockerd engine.sh started (pid $pid)"
  else
    log "no dockerd started by engine.sh is running"
  fi
  exit 0
fi

# Atomically, so that a runc call in flight never finds the file half written.
install_shim() {
  mkdir -p "$STATE_DIR"
  cp "$(dirname "$0")/runc-shim.sh" "$SHIM.new" && chmod 0755 "$SHIM.new" && mv "$SHIM.new" "$SHIM"
}
if lacks_sys_resource; then install_shim; fi

if docker info >/dev/null 2>&1; then
  if ! lacks_sys_resource || [ "$(default_runtime)" = drishti-runc ]; then
    log "Docker Engine is ready ($(ready_line))"
    exit 0
  fi
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ ! -f "$STATE_DIR/dockerd.flags" ] || [ -z "$pid" ] || ! grep -qx "$pid" "$STATE_DIR/dockerd.pid" 2>/dev/null; then
    log "warning: this kernel withholds CAP_SYS_RESOURCE and the running dockerd (not started by engine.sh) does" \
      "not use hack/docker/runc-shim.sh: privileged containers (kind nodes) will fail to start"
    exit 0
  fi
  log "restarting the dockerd engine.sh started (pid $pid), to make runc-shim.sh its default runtime"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
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
      docker.io containerd runc tini iptables ca-certificates xz-utils jq || rc=$?
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

if ! command -v dockerd >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then
  install_engine
fi

mkdir -p "$STATE_DIR"
if ! dockerd_running; then
  if [ -n "${DRISHTI_DOCKERD_FLAGS:-}" ]; then
    flags="$DRISHTI_DOCKERD_FLAGS"
  else
    flags="$(probe_storage) $(probe_network)"
  fi
  if lacks_sys_resource; then
    flags="$flags --add-runtime drishti-runc=$SHIM --default-runtime drishti-runc"
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
cat /var/run/docker.pid >"$STATE_DIR/dockerd.pid" 2>/dev/null || true
log "Docker Engine is ready ($(ready_line))"
