#!/usr/bin/env bash
# `npm start`: set up what is missing (npm dependencies, the Temporal CLI), build, and run
# `arena-source dev` on the offline examples. Extra arguments go to `arena-source dev`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh start
bash scripts/ensure-node-deps.sh
# As the image does (deploy/Dockerfile): node on jemalloc when this machine has it (Debian: libjemalloc2),
# else glibc with two malloc arenas (one per thread costs the worker a quarter of its RSS).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
for lib in /usr/lib/*-linux-gnu/libjemalloc.so.2; do
  if [[ -e "$lib" && -z "${LD_PRELOAD:-}" ]]; then
    export LD_PRELOAD="$lib" MALLOC_CONF="${MALLOC_CONF:-background_thread:true}"
  fi
done
exec node bin/arena-source.js dev --sources examples/sources --git-repos examples/repos "$@"
