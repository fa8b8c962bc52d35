#!/usr/bin/env bash
# PID 1 of the one-node test cluster (test/helpers/node.ts), started as
#   nsenter --net=/run/netns/NAME unshare --mount --pid --fork --mount-proc --propagation private holder.sh DIR
# Every component of the node is then started inside its namespaces (nsenter
# --target <this> --net --mount --pid). When this process ends, the kernel
# kills everything left in its PID namespace — containers included — and the
# node's mounts (container root filesystems, volumes) go with its mount
# namespace: nothing outlives a test, even one that crashed.
#
# It ends when its stdin closes, i.e. when the test process that holds the
# other end exits or dies.
set -euo pipefail
dir="${1:?state dir}"

# Mounts made here stay here, but propagate among the node's own mounts
# (the kubelet shares volume mounts with containerd this way).
mount --make-rshared /

# Paths containerd, the CNI plugins and the kubelet use that no setting moves:
# private, throwaway copies.
for d in /run/netns /var/lib/cni /var/log/containers; do
  mkdir -p "$d"
  mount -t tmpfs -o mode=0755 tmpfs "$d"
done

# The kubelet sets these kernel-wide sysctls unless they already hold its values.
# Show it its values here so it leaves the host's alone.
mkdir -p "$dir/sysctl"
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
          kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key="${kv%%=*}" value="${kv#*=}"
  [[ "$(cat "/proc/sys/$key")" == "$value" ]] && continue
  file="$dir/sysctl/${key//\//.}"
  echo "$value" > "$file"
  mount --bind -o ro "$file" "/proc/sys/$key"
done

echo ready
# Wait for stdin to close; as PID 1, bash also reaps the orphans it adopts meanwhile.
while read -r _; do :; done
