#!/usr/bin/env bash
# `npm run test:node22`: the whole suite again on Node 22 (the code supports Node 20 and 22).
# Same set-up as `npm test`; the build is Node 20's (tsc output does not depend on the runtime).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh test
bash scripts/ensure-node-deps.sh
bin=$(bash scripts/ensure-node22.sh)
echo "::: running the tests on $("$bin/node" --version)"
# The image and install tests run the product inside its image (Node 20 there): the host's Node does
# not change what they test, so the Node 20 pass (npm test) runs them and this one does not.
PATH="$bin:$PATH" TEST_EXCLUDE="${TEST_EXCLUDE:-e2e/image,e2e/install}" exec node scripts/run-tests.mjs "$@"
