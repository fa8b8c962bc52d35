#!/usr/bin/env bash
# `npm run test:node22`: the whole suite again on Node 22 (the code supports Node 20 and 22).
# Same set-up as `npm test`; the build is Node 20's (tsc output does not depend on the runtime).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh test
bash scripts/ensure-node-deps.sh
bin=$(bash scripts/ensure-node22.sh)
echo "::: running the tests on $("$bin/node" --version)"
PATH="$bin:$PATH" exec node scripts/run-tests.mjs "$@"
