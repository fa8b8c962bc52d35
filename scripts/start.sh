#!/usr/bin/env bash
# `npm start`: set up what is missing (npm dependencies, the Temporal CLI), build, and run
# `arena-source dev` on the offline examples. Extra arguments go to `arena-source dev`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh start
bash scripts/ensure-node-deps.sh
# As the image does (deploy/Dockerfile): one malloc arena per thread costs the worker a quarter of its RSS.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node bin/arena-source.js dev --sources examples/sources --git-repos examples/repos "$@"
