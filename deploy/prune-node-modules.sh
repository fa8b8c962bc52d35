#!/bin/sh
# Removes from production node_modules what never runs on Linux under Node (deploy/Dockerfile):
# native binaries of other platforms and runtimes, sources and type declarations, docs.
# Usage: prune-node-modules.sh NODE_MODULES_DIR
set -eu
cd "$1"

case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-gnu ;;
  aarch64) target=aarch64-unknown-linux-gnu ;;
  *) echo "prune-node-modules: no Temporal core bridge for $(uname -m)" >&2; exit 1 ;;
esac
# Temporal's core bridge ships a prebuilt index.node per platform (~30 MB each) plus its Rust
# sources; only this platform's binary is loaded.
bridge=@temporalio/core-bridge
[ -f "$bridge/releases/$target/index.node" ] || { echo "prune-node-modules: $bridge has no $target build" >&2; exit 1; }
find "$bridge/releases" -mindepth 1 -maxdepth 1 ! -name "$target" -exec rm -rf {} +
rm -rf "$bridge/sdk-core" "$bridge/src" "$bridge/bridge-macros" "$bridge/scripts" "$bridge"/Cargo.*
# Its symbol table (a fifth of it) only names functions in Rust backtraces; with strip present
# (deploy/Dockerfile installs binutils in the stage that runs this), drop it.
if command -v strip >/dev/null 2>&1; then strip --strip-unneeded "$bridge/releases/$target/index.node"; fi

# swc compiles TypeScript workflows; ours are compiled to JavaScript before they are bundled,
# so swc-loader never loads its native binding.
rm -rf @swc/core-*
# tar-stream's bare-* dependencies carry prebuilt addons for the Bare runtime, not Node.
rm -rf bare-*/prebuilds

# ES module builds that only bundlers read: under Node these packages resolve to their
# CommonJS builds ("node" and "require" conditions, or "main").
rm -rf @aws-sdk/*/dist-es @smithy/*/dist-es rxjs/dist/esm rxjs/dist/esm5 rxjs/dist/bundles

# Type declarations, docs and packages' own tests are for editors and people.
find . -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.tsbuildinfo' -o \
  \( -iname '*.md' ! -iname 'licen[cs]e*' ! -iname 'notice*' \) \) -exec rm -f {} +
for dir in test tests __tests__ example examples; do rm -rf ./*/"$dir" ./@*/*/"$dir"; done
# TypeScript sources and source maps, except those of the @temporalio packages that go into
# the worker's webpack bundle of workflow code, which reads them for workflow stack traces.
find . \( -path ./@temporalio/workflow -o -path ./@temporalio/common -o -path ./@temporalio/proto -o -path ./@temporalio/nexus \) -prune \
  -o -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' \) -exec rm -f {} +
