#!/usr/bin/env bash
# Builds Flux's source-controller v1.9.1 (the cluster benchmark's baseline, bench/kubernetes.ts)
# from its Go module into $BIN_DIR (default ~/.cache/arena-source/bin/flux-source-controller),
# and copies its six CRDs from the module into $BIN_DIR/flux-crds/. Bench only: the tests never
# need it (scripts/ensure-tools.sh bench). Skips when the stamp matches; `--force` rebuilds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${HOME:=/root}"
BIN_DIR="${ARENA_FLUX_BIN_DIR:-$HOME/.cache/arena-source/bin}"
BIN="$BIN_DIR/flux-source-controller"
CRDS="$BIN_DIR/flux-crds"
STAMP="$BIN_DIR/flux-source-controller.stamp"
cd "$HERE"
version="$(grep -oE '^require github.com/fluxcd/source-controller v[^ ]+' go.mod | awk '{ print $3 }')"
want="source-controller=$version go=$(go env GOVERSION) mod=$(cat go.mod go.sum | sha256sum | cut -c1-16)"
if [[ "${1:-}" != "--force" && -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" && $(ls "$CRDS"/*.yaml 2>/dev/null | wc -l) -eq 6 ]]; then
  echo "cached: $BIN ($want)"
  exit 0
fi
echo "::: building Flux source-controller ($want) into $BIN (minutes the first time)"
start=$SECONDS
mkdir -p "$BIN_DIR"
GOFLAGS="-trimpath -mod=mod" go build -ldflags="-s -w" -o "$BIN.tmp" github.com/fluxcd/source-controller
mv "$BIN.tmp" "$BIN"
src="$(go list -m -f '{{.Dir}}' github.com/fluxcd/source-controller)"
rm -rf "$CRDS" && mkdir -p "$CRDS"
cp "$src"/config/crd/bases/*.yaml "$CRDS/"
chmod -R u+w "$CRDS"
echo "$want" > "$STAMP"
echo "::: built flux-source-controller in $((SECONDS - start))s; CRDs: $(ls "$CRDS" | tr '\n' ' ')"
