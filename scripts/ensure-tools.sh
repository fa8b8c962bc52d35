#!/usr/bin/env bash
# Installs what arena-source needs on this machine, skipping whatever is present:
#   ensure-tools.sh start   git and the Temporal CLI (for `npm start`)
#   ensure-tools.sh test    everything the test suite runs against (for `npm test` and .ci/run)
#   ensure-tools.sh install helm, for installing the chart (README "Install")
#   ensure-tools.sh bench   also jemalloc, kube-apiserver + etcd and Flux's source-controller, for `npm run bench`
# Go tools are built from their Go modules (no binary downloads) into ~/.cache/arena-source/bin.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROFILE="${1:-test}"
: "${HOME:=/root}"
BIN_DIR="$HOME/.cache/arena-source/bin"
mkdir -p "$BIN_DIR"

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root (or sudo) to run: $*" >&2; return 1
  fi
}

# Debian packages: only those missing; apt-get update at most once.
APT_UPDATED=0
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null 2>&1 || { echo "missing packages ${missing[*]} and no apt-get: install them yourself" >&2; return 1; }
  echo "::: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $APT_UPDATED -eq 0 ]]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_tool NAME MODULE VERSION PACKAGE [LDFLAGS]: builds PACKAGE@VERSION unless BIN_DIR/NAME is that
# build already; LDFLAGS are added to -s -w (e.g. -X for a version string the Makefile would set).
go_tool() {
  local name="$1" module="$2" version="$3" package="$4" ldflags="${5:-}"
  local bin="$BIN_DIR/$name"
  if [[ -x "$bin" ]] && go version -m "$bin" 2>/dev/null | awk -v m="$module" -v v="$version" '$1=="mod" && $2==m && $3==v {f=1} END {exit !f}'; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || { echo "$name is missing and Go is not installed to build it" >&2; return 1; }
  echo "::: building $name $version from its Go module (cached in $BIN_DIR; takes minutes the first time)"
  local start=$SECONDS
  GOBIN="$BIN_DIR" GOFLAGS="-trimpath" go install -ldflags="-s -w${ldflags:+ $ldflags}" "$package@$version"
  echo "::: built $name in $((SECONDS - start))s"
}

# helm, for the chart (deploy/chart/arena-source): its version string is set as helm's Makefile does.
HELM_VERSION=v4.3.2
ensure_helm() {
  go_tool helm helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
}
if [[ "$PROFILE" == "install" ]]; then
  ensure_helm
  exit 0
fi

# --- for `npm start` and the tests ---------------------------------------------
command -v git >/dev/null 2>&1 || apt_install git
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || apt_install ca-certificates
[[ -x "$(git --exec-path)/git-http-backend" ]] || { echo "git http-backend not found in $(git --exec-path)" >&2; exit 1; }
start_go_tools() {
  go_tool temporal github.com/temporalio/cli v1.5.1 github.com/temporalio/cli/cmd/temporal
  # OCI sources talk to registries through oras (src/oci/oras.ts: $ORAS_PATH, then $BIN_DIR/oras, then PATH).
  go_tool oras oras.land/oras v1.3.6 oras.land/oras/cmd/oras
}

# The test profile's Go-built servers (the longest part of a cold set-up: ~15 min on 2 cores).
test_go_tools() {
  start_go_tools
  # Kubernetes built from Go modules (test/k8s/go.mod pins the release): kube-apiserver + etcd,
  # and for the one-node cluster (test/helpers/node.ts) the controller-manager, scheduler, kubelet, kube-proxy.
  ARENA_K8S_BIN_DIR="$BIN_DIR" bash test/k8s/build.sh
  # kustomize renders deploy/base and deploy/overlays/* for the server-side dry-run tests.
  go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 v5.7.1 sigs.k8s.io/kustomize/kustomize/v5
  # helm lints, renders and installs the chart in its tests (~6 min cold build on 2 busy cores).
  ensure_helm
  # S3-compatible server for the S3 artifact store tests (posix backend; ~2-3 min cold build on 2 cores).
  go_tool versitygw github.com/versity/versitygw v1.8.0 github.com/versity/versitygw/cmd/versitygw
}

if [[ "$PROFILE" != "test" ]]; then
  start_go_tools
fi

# --- for the tests only ------------------------------------------------------------
if [[ "$PROFILE" == "test" ]]; then
  # Go builds are CPU; the Debian packages and base images below are mostly network and disk: side
  # by side, a cold set-up takes minutes less. The builds' output goes to a log, shown if they fail.
  go_log=$(mktemp)
  test_go_tools >"$go_log" 2>&1 &
  go_pid=$!
  # Should an install below fail, the builds stop with the script instead of running on alone.
  trap 'kill "$go_pid" 2>/dev/null; rm -f "$go_log"' EXIT
  # Private git: a real sshd (test/helpers/ssh-server.ts) and the ssh client.
  { command -v ssh && command -v ssh-keygen; } >/dev/null 2>&1 || apt_install openssh-client
  [[ -x /usr/sbin/sshd ]] || command -v sshd >/dev/null 2>&1 || apt_install openssh-server
  # OCI: a real registry (CNCF distribution 2.8), htpasswd for its bcrypt users, openssl for a throwaway CA.
  command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry
  command -v htpasswd >/dev/null 2>&1 || apt_install apache2-utils
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  # The product image (test/image, test/e2e/image.test.ts): podman with runc, and stand-in base
  # images built from Debian and npm packages by mmdebstrap (cached; ~2 min cold).
  { command -v podman && command -v runc && command -v mmdebstrap; } >/dev/null 2>&1 || apt_install podman runc mmdebstrap
  bash test/image/base-images.sh
  # The node's container runtime and network: Debian's containerd 1.6 with runc, the bridge CNI
  # plugin, iptables and conntrack for kube-proxy.
  { command -v containerd && command -v runc && command -v iptables && command -v conntrack; } >/dev/null 2>&1 ||
    apt_install containerd runc iptables conntrack
  [[ -x /usr/lib/cni/bridge || -x /opt/cni/bin/bridge ]] || apt_install containernetworking-plugins
  # --- verify-transport (issue 14 items 3-4): squid, the real HTTP proxy of the proxySecretRef tests
  # (test/helpers/squid.ts), stunnel4, the TLS terminator in front of the git server
  # (test/helpers/tls-terminator.ts), and gpg for git signature verification (ssh-keygen is above).
  { [[ -x /usr/sbin/squid ]] && command -v stunnel4 && command -v gpg; } >/dev/null 2>&1 || apt_install squid stunnel4 gnupg
  # --- Temporal over TLS (test/integration/temporal-tls.test.ts, test/helpers/tls-proxy.ts) ---
  # Real TLS terminators in front of the dev server: HAProxy requiring client certificates (mTLS;
  # stunnel4 cannot: it offers no ALPN h2, which the worker's gRPC stack requires) and nginx with
  # grpc_pass checking the API key header. Debian packages, ~10 s cold; not started as services.
  { [[ -x /usr/sbin/haproxy ]] || command -v haproxy; } >/dev/null 2>&1 || apt_install haproxy
  { [[ -x /usr/sbin/nginx ]] || command -v nginx; } >/dev/null 2>&1 || apt_install nginx-light
  go_status=0
  wait "$go_pid" || go_status=$?
  trap - EXIT
  cat "$go_log"
  rm -f "$go_log"
  if [[ $go_status -ne 0 ]]; then echo "building the Go tools failed (exit $go_status): see above" >&2; exit "$go_status"; fi
fi

# --- for the cluster benchmark only (`npm run bench -- --kubernetes`, bench/kubernetes.ts) ---------
# Flux's source-controller v1.9.1 from its Go module, the same-run baseline (bench/flux/build.sh;
# a cold build is long, so the test profile never builds it), and the API server the tests use.
if [[ "$PROFILE" == "bench" ]]; then
  # The image runs node on jemalloc; the benchmarks start arena-source the same way (bench/lib/image-env.ts).
  apt_install libjemalloc2
  ARENA_K8S_BIN_DIR="$BIN_DIR" bash test/k8s/build.sh
  ARENA_FLUX_BIN_DIR="$BIN_DIR" bash bench/flux/build.sh
fi
