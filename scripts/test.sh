#!/usr/bin/env bash
# `npm test`: set up what is missing (system packages, Go-built servers, npm dependencies),
# build, and run every test against real servers. Arguments filter test files by path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh test
bash scripts/ensure-node-deps.sh
exec node scripts/run-tests.mjs "$@"
