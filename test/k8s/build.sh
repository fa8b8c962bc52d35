#!/usr/bin/env bash
# Builds the real kube-apiserver and etcd from Go modules (prebuilt binaries
# cannot be downloaded here) into $ARENA_K8S_BIN_DIR (default
# ~/.cache/arena-source/bin), for test/helpers/kube.ts.
#
# The versions are those pinned by go.mod/go.sum beside this script: one
# k8s.io/kubernetes release, its staging modules replaced by their published
# v0.N.P tags, and the etcd server release that Kubernetes release requires.
# `go install pkg@version` refuses modules with replace directives, hence this
# module and `go build -o` inside it.
#
# Skips the build when both binaries exist and the stamp (a hash of go.mod,
# go.sum, this script and the Go version) matches. A cold build (empty module
# and build caches) takes several minutes on 2 cores; see the timing it prints.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${HOME:=/root}"
BIN_DIR="${ARENA_K8S_BIN_DIR:-$HOME/.cache/arena-source/bin}"
STAMP="$BIN_DIR/k8s-binaries.stamp"

cd "$HERE"
k8s_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
etcd_version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"
want_stamp="kubernetes=$k8s_version etcd=$etcd_version go=$(go env GOVERSION) inputs=$(
  cat go.mod go.sum build.sh | sha256sum | cut -c1-16
)"

if [[ "${1:-}" != "--force" && -x "$BIN_DIR/kube-apiserver" && -x "$BIN_DIR/etcd" &&
      -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]]; then
  echo "cached: $BIN_DIR/kube-apiserver $BIN_DIR/etcd ($want_stamp)"
  exit 0
fi

echo "building kube-apiserver $k8s_version and etcd $etcd_version into $BIN_DIR"
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
go build -trimpath -ldflags="-s -w$version_ldflags" -o "$tmp/kube-apiserver" \
  k8s.io/kubernetes/cmd/kube-apiserver
echo "kube-apiserver built in $((SECONDS - start))s"
start2=$SECONDS
go build -trimpath -ldflags="-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3
echo "etcd built in $((SECONDS - start2))s"

"$tmp/kube-apiserver" --version
"$tmp/etcd" --version | head -1
mv -f "$tmp/kube-apiserver" "$tmp/etcd" "$BIN_DIR/"
echo "$want_stamp" > "$STAMP"
echo "built in $((SECONDS - start))s: $BIN_DIR/kube-apiserver $BIN_DIR/etcd"
