#!/usr/bin/env bash
# `npm run test:node22`: the suite's Node-sensitive part again on Node 22 (the code supports 20 and 22).
# Same set-up as `npm test`; the build is Node 20's (tsc output does not depend on the runtime).
#
# Not the whole suite: on CI's 2 cores a second full pass costs ~6.5 min, and most integration tests
# exercise servers (git, registry, API server, S3), not the runtime. This pass runs every unit test
# plus one test per part of the product that touches Node's own APIs in a different way: the workflow
# sandbox (replay, stub-activity protocol), child processes (git over http and ssh, oras), streams and
# tar (OCI, content volume), fetch/undici (S3, the Kubernetes client, webhooks), and the CLI end to end. TEST_INCLUDE (comma-separated path substrings) overrides it;
# TEST_INCLUDE=all runs everything (except the image and install tests, below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure-tools.sh test
bash scripts/ensure-node-deps.sh
bin=$(bash scripts/ensure-node22.sh)
echo "::: running the tests on $("$bin/node" --version)"
default_include="unit/,integration/replay,integration/workflow-logic,integration/git-source,integration/git-auth.test,\
integration/oci-source,integration/content-volume,integration/s3-store,integration/controller.test,integration/crd,\
integration/webhooks,integration/artifact-server,e2e/cli"
include="${TEST_INCLUDE:-$default_include}"
[ "$include" = all ] && include=""
filters=()
IFS=',' read -r -a filters <<< "$include"
# The image and install tests run the product inside its image (Node 20 there): the host's Node does
# not change what they test, so the Node 20 pass (npm test) runs them and this one never does.
PATH="$bin:$PATH" TEST_EXCLUDE="${TEST_EXCLUDE:-e2e/image,e2e/install}" exec node scripts/run-tests.mjs "${filters[@]}" "$@"
