#!/usr/bin/env bash
# Builds the real Kubernetes control plane and node binaries and etcd from Go
# modules (prebuilt binaries cannot be downloaded here) into $ARENA_K8S_BIN_DIR
# (default ~/.cache/arena-source/bin): kube-apiserver and etcd for
# test/helpers/kube.ts, plus kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy and arena-pause (pause/main.go: the node's sandbox image) for the
# one-node cluster of test/helpers/node.ts, and kubectl and arena-kstatus
# (kstatus/main.go: sigs.k8s.io/cli-utils' kstatus rules) for the status tests.
#
# The versions are those pinned by go.mod/go.sum beside this script: one
# k8s.io/kubernetes release, its staging modules replaced by their published
# v0.N.P tags, and the etcd server release that Kubernetes release requires.
# `go install pkg@version` refuses modules with replace directives, hence this
# module and `go build -o` inside it.
#
# Skips the build when every binary exists and the stamp (versions, Go
# version, RECIPE and a hash of go.mod, go.sum and pause/main.go) matches;
# `--force` rebuilds.
# All binaries come from one `go build`, so the packages they share compile
# once: a cold build (empty module and build caches) is about 580 CPU-seconds,
# ~5 minutes on 2 idle cores, of which kube-apiserver and etcd alone are ~460;
# with a warm build cache it only links (~20-40 s). kubectl and arena-kstatus
# add 195 packages to the ~2 600 the others share (kubectl's commands,
# kustomize, cli-utils' kstatus): ~45 CPU-seconds more, measured as the
# increment over a warm cache (43 s user+sys, links included); built alone
# from an empty cache they take ~220 CPU-seconds.
#
# To move to another release: set k8s.io/kubernetes to v1.N.P in go.mod, each
# k8s.io/* replace to v0.N.P (the staging modules k8s.io/kubernetes's own
# go.mod replaces), etcd/server to the version that release requires, then
# `GOFLAGS=-mod=mod go mod tidy` here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${HOME:=/root}"
BIN_DIR="${ARENA_K8S_BIN_DIR:-$HOME/.cache/arena-source/bin}"
STAMP="$BIN_DIR/k8s-binaries.stamp"

cd "$HERE"
# Read from go.mod, not `go list -m`: that would load the module graph (and
# download go.mod files) even when the cached binaries are current.
mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' go.mod; }
k8s_version="$(mod_version k8s.io/kubernetes)"
etcd_version="$(mod_version go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] || { echo "cannot read versions from $HERE/go.mod" >&2; exit 1; }
# Bump RECIPE when the build flags below change in a way that matters.
RECIPE=2
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# arena-pause (pause/main.go): the sandbox image and test server of the node.
# kubectl (`kubectl wait`) and arena-kstatus (kstatus/main.go, cli-utils' kstatus
# rules) check the conditions the controller writes (test/integration/kstatus.test.ts).
BINS=("${KUBE_CMDS[@]}" kubectl etcd arena-pause arena-kstatus)
want_stamp="kubernetes=$k8s_version etcd=$etcd_version go=$(go env GOVERSION) recipe=$RECIPE mod=$(
  cat go.mod go.sum pause/main.go kstatus/main.go | sha256sum | cut -c1-16
)"

all_present() { local b; for b in "${BINS[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done; }
if [[ "${1:-}" != "--force" ]] && all_present && [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]]; then
  echo "cached: ${BINS[*]} in $BIN_DIR ($want_stamp)"
  exit 0
fi

echo "building ${KUBE_CMDS[*]} $k8s_version and etcd $etcd_version into $BIN_DIR"
mkdir -p "$BIN_DIR"
tmp="$(mktemp -d "$BIN_DIR/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

major="${k8s_version#v}"; major="${major%%.*}"
minor="${k8s_version#v*.}"; minor="${minor%%.*}"
version_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  version_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

# Pure Go (as upstream builds them); -mod=readonly so a stale go.sum fails
# instead of silently resolving something else.
export CGO_ENABLED=0
export GOFLAGS="-mod=readonly -buildvcs=false"
start=$SECONDS
# One build for all: -o DIR names each binary after its package (etcd's is "server").
go build -trimpath -ldflags="-s -w$version_ldflags" -o "$tmp/" \
  "${KUBE_CMDS[@]/#/k8s.io/kubernetes/cmd/}" k8s.io/kubernetes/cmd/kubectl go.etcd.io/etcd/server/v3 ./pause ./kstatus
mv "$tmp/server" "$tmp/etcd"
mv "$tmp/pause" "$tmp/arena-pause"
mv "$tmp/kstatus" "$tmp/arena-kstatus"
echo "built in $((SECONDS - start))s"

for b in "${KUBE_CMDS[@]}"; do "$tmp/$b" --version; done
"$tmp/kubectl" version --client
# sed reads all of it: `head -1` could kill etcd with SIGPIPE, failing the build (pipefail).
"$tmp/etcd" --version | sed -n 1p
for b in "${BINS[@]}"; do mv -f "$tmp/$b" "$BIN_DIR/"; done
echo "$want_stamp" > "$STAMP"
echo "installed in $BIN_DIR: ${BINS[*]}"
