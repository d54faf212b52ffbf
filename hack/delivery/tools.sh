#!/usr/bin/env bash
# Build (or reuse) the delivery tools from the Go module proxy, cached per machine, and print their paths.
#
#   hack/delivery/tools.sh skaffold           # prints .../skaffold
#   hack/delivery/tools.sh compose            # prints .../docker-compose, and makes `docker compose` find it
#   hack/delivery/tools.sh helm3 kind         # helm 3 (skaffold's helm deployer needs it), kind
#   hack/delivery/tools.sh coredns jaeger     # CoreDNS for the offline kind node, Jaeger v2 for its trace tests
#   hack/delivery/tools.sh                    # all of them, one path per line
#   hack/delivery/tools.sh --path skaffold    # print the cached path if built, exit 1 otherwise (never builds)
#
# Each tool is built in a generated wrapper module (skaffold's go.mod has `replace` lines, which
# `go install pkg@version` refuses) with the upstream module's own replace/exclude lines, CGO off, stripped.
# Cache: ${DRISHTI_CACHE_DIR:-~/.cache/drishti}/tools/<tool>-<version>/; a file lock serializes concurrent runs.
# Progress goes to stderr, paths to stdout.
set -euo pipefail
shopt -s inherit_errexit

SKAFFOLD_VERSION=v2.16.1   # the newest release the Go module proxy serves here; newest schema skaffold/v4beta13
COMPOSE_VERSION=v2.40.3    # Docker Compose v2 CLI plugin (Debian bookworm ships only compose v1)
HELM3_VERSION=v3.20.2      # skaffold v2.16 drives helm 3 only (`helm version --client`, executable post-renderers)
KIND_VERSION=v0.31.0
COREDNS_VERSION=v1.13.1    # the CoreDNS kubeadm v1.35 deploys (hack/kind bakes it into the offline kind node)
JAEGER_VERSION=v1.76.0     # its cmd/jaeger is Jaeger v2: a trace backend for the kind tests (OTLP in, query API out)
RECIPE=r1

CACHE="${DRISHTI_CACHE_DIR:-$HOME/.cache/drishti}/tools"

say() { echo "[tools] $*" >&2; }

module_of() {
    case "$1" in
        skaffold) echo "github.com/GoogleContainerTools/skaffold/v2 $SKAFFOLD_VERSION ./cmd/skaffold skaffold" ;;
        compose) echo "github.com/docker/compose/v2 $COMPOSE_VERSION ./cmd docker-compose" ;;
        helm3) echo "helm.sh/helm/v3 $HELM3_VERSION ./cmd/helm helm" ;;
        kind) echo "sigs.k8s.io/kind $KIND_VERSION . kind" ;;
        coredns) echo "github.com/coredns/coredns $COREDNS_VERSION . coredns" ;;
        jaeger) echo "github.com/jaegertracing/jaeger $JAEGER_VERSION ./cmd/jaeger jaeger" ;;
        *) say "unknown tool: $1 (known: skaffold, compose, helm3, kind, coredns, jaeger)"; exit 2 ;;
    esac
}

ldflags_of() {
    local tool=$1 version=$2 gomod=$3 minor
    case "$tool" in
        skaffold) echo "-s -w -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$version" ;;
        compose) echo "-s -w -X github.com/docker/compose/v2/internal.Version=$version" ;;
        helm3)  # as helm's Makefile: the default Kubernetes version of `helm template` follows its client-go
            minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
            echo "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
                "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" \
                "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" ;;
        kind) echo "-s -w" ;;
        coredns) echo "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$version" ;;
        jaeger) echo "-s -w" ;;
    esac
}

dir_of() {
    local tool=$1 module version
    read -r module version _ _ <<<"$(module_of "$tool")"
    echo "$CACHE/$tool-$version-$RECIPE"
}

build() {
    local tool=$1 module version pkg binary dir work
    read -r module version pkg binary <<<"$(module_of "$tool")"
    dir=$(dir_of "$tool")
    if [[ -x "$dir/$binary" && -f "$dir/manifest.json" ]]; then
        echo "$dir/$binary"
        return
    fi
    command -v go >/dev/null || { say "go is needed to build $tool"; exit 1; }
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.$tool.lock"
    flock 9
    if [[ -x "$dir/$binary" && -f "$dir/manifest.json" ]]; then  # built by another run while we waited
        echo "$dir/$binary"
        return
    fi
    say "building $tool $version from the Go module proxy (once per machine; several minutes)"
    local t0=$SECONDS
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
    local gomod
    gomod=$(cd "$work" && go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    (cd "$work" && go mod init "drishti.local/${tool}build" 2>/dev/null && go mod edit -require="$module@$version")
    # the upstream module's replace and exclude directives, as go mod edit flags
    local edits
    edits=$(go mod edit -json "$gomod" | python3 -c '
import json, sys
mod = json.load(sys.stdin)
def at(m):
    return m["Path"] + ("@" + m["Version"] if m.get("Version") else "")
for r in mod.get("Replace") or []:
    print("-replace=" + at(r["Old"]) + "=" + at(r["New"]))
for e in mod.get("Exclude") or []:
    print("-exclude=" + at(e.get("Mod", e)))
')
    if [[ -n "$edits" ]]; then
        # shellcheck disable=SC2086
        (cd "$work" && go mod edit $edits)
    fi
    (cd "$work" && go mod download "$module" >&2 && go build -trimpath -ldflags "$(ldflags_of "$tool" "$version" "$gomod")" \
        -o "$work/$binary" "$module${pkg#.}" >&2)
    mkdir -p "$dir"
    mv "$work/$binary" "$dir/$binary"
    printf '{"tool": "%s", "module": "%s", "version": "%s", "go": "%s", "seconds": %d}\n' \
        "$tool" "$module" "$version" "$(go env GOVERSION)" $((SECONDS - t0)) >"$dir/manifest.json"
    say "built $tool in $((SECONDS - t0)) s: $dir/$binary"
    echo "$dir/$binary"
}

# `docker compose` looks for the plugin in ~/.docker/cli-plugins (or $DOCKER_CONFIG/cli-plugins): link ours
# there unless another docker-compose plugin is already installed.
link_compose_plugin() {
    local path=$1 plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    local link="$plugins/docker-compose"
    if [[ -e "$link" && "$(readlink -f "$link")" != "$(readlink -f "$path")" ]]; then
        case "$(readlink -f "$link")" in
            "$CACHE"/compose-*) ;;             # an older build of ours: replace it
            *) return 0 ;;                     # someone else's plugin: leave it
        esac
    fi
    mkdir -p "$plugins"
    ln -sfn "$path" "$link"
}

only_path=0
tools=()
for arg in "$@"; do
    case "$arg" in
        --path) only_path=1 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) tools+=("$arg") ;;
    esac
done
[[ ${#tools[@]} -gt 0 ]] || tools=(skaffold compose helm3 kind)
for tool in "${tools[@]}"; do
    case "$tool" in
        skaffold | compose | helm3 | kind | coredns | jaeger) ;;
        *) say "unknown tool: $tool (known: skaffold, compose, helm3, kind, coredns, jaeger)"; exit 2 ;;
    esac
done

for tool in "${tools[@]}"; do
    if [[ $only_path == 1 ]]; then
        read -r _ _ _ binary <<<"$(module_of "$tool")"
        path="$(dir_of "$tool")/$binary"
        [[ -x "$path" && -f "$(dir_of "$tool")/manifest.json" ]] || exit 1
        echo "$path"
        continue
    fi
    path=$(build "$tool")
    [[ "$tool" == compose ]] && link_compose_plugin "$path"
    echo "$path"
done
