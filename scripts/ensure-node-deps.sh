#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than package-lock.json,
# and builds dist/ when any source is newer than the last build. Quiet when all is current.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "::: npm ci"
  # --ignore-scripts skips our own `prepare` (built below); `npm rebuild` runs the dependencies' scripts.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  npm rebuild --loglevel=error >/dev/null
fi
npx --no-install tsc -p tsconfig.json
# Only the parts of @kubernetes/client-node the product uses, bundled (src/kube/kubernetes-client.ts).
node scripts/bundle-kube-client.mjs >/dev/null
# The workflow bundle the workers load (webpack once per build, not per worker start; a no-op when current).
node dist/src/workflow-bundle-main.js --prebuilt
