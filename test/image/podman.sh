# Sourced by the image scripts: podman with the project's containers.conf (runc, file limits,
# no systemd), whatever the machine's own configuration says.
IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$IMAGE_DIR/containers.conf}"
command -v podman >/dev/null 2>&1 || { echo "podman is not installed: run scripts/ensure-tools.sh test" >&2; exit 1; }
