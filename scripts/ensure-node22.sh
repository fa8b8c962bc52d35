#!/usr/bin/env bash
# Puts a Node 22 under ~/.cache/arena-source/node22 (once) and prints its bin directory.
# The binary comes from the npm registry (the node-linux-<arch> package the `node`
# package installs), the only place CI can download from.
set -euo pipefail
dest="$HOME/.cache/arena-source/node22"
if [ -x "$dest/bin/node" ] && "$dest/bin/node" --version | grep -q '^v22\.'; then
  echo "$dest/bin"
  exit 0
fi
arch=$(node -p process.arch)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "node-linux-${arch}@22" >/dev/null && tar xzf node-linux-*.tgz)
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp/package" "$dest"
"$dest/bin/node" --version >&2
echo "$dest/bin"
