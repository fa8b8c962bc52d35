#!/usr/bin/env bash
# Builds the product image localhost/arena-source:<tag> from deploy/Dockerfile with podman, on
# the registry-free stand-in base images (test/image/base-images.sh). Layers are cached by podman.
#   bash test/image/build.sh [--tag TAG]      (default tag: dev)
# Standard output: the image name, nothing else. Progress, the image's size and the size it adds
# on top of its base image go to standard error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TAG=dev
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) TAG="${2:?--tag needs a value}"; shift 2 ;;
    --tag=*) TAG="${1#--tag=}"; shift ;;
    *) echo "usage: bash test/image/build.sh [--tag TAG]" >&2; exit 2 ;;
  esac
done
source test/image/podman.sh
IMAGE="localhost/arena-source:$TAG"
BASE=docker.io/library/node:20-bookworm-slim

bash test/image/base-images.sh >&2
start=$SECONDS
previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
podman build --pull=never --network host --layers -f deploy/Dockerfile -t "$IMAGE" . >&2
# The image this tag named before is garbage now (unless another tag or container holds it).
[[ -z "$previous" || "$previous" == "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]] || podman rmi "$previous" >/dev/null 2>&1 || true
size="$(podman image inspect --format '{{.Size}}' "$IMAGE")"
base="$(podman image inspect --format '{{.Size}}' "$BASE")"
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }
echo "::: $IMAGE built in $((SECONDS - start))s: $(mb "$size"), of which $(mb $((size - base))) on top of $BASE" >&2
echo "$IMAGE"
