#!/usr/bin/env bash
# The network of the one-node test cluster (test/helpers/node.ts): a network
# namespace joined to this host by one veth pair, nothing else.
#
#   netns.sh up   NAME HOST_CIDR NODE_CIDR   e.g. up arena-node 10.250.0.1/30 10.250.0.2/30
#   netns.sh down NAME
#
# `up` first removes what a crashed earlier run may have left under NAME, so it
# can always be run again. Inside, the node's default route points at the host
# end; pods reach the host end (where the tests' git server, registry and
# Temporal listen) through the node, masqueraded by the bridge CNI plugin.
# Nothing is routed or NATed on the host side: cluster traffic stays on the pair.
set -euo pipefail

cmd="${1:?usage: netns.sh up NAME HOST_CIDR NODE_CIDR | down NAME}"
name="${2:?name}"
# Interface names are at most 15 characters; the host end is named after the netns.
host_if="veth-${name:0:10}"

down() {
  if ip netns list | awk '{print $1}' | grep -qx "$name"; then
    # Processes still in it (a crashed run): kill them, or the namespace outlives its name.
    local pids
    pids="$(ip netns pids "$name" 2>/dev/null || true)"
    [[ -n "$pids" ]] && kill -9 $pids 2>/dev/null || true
    ip netns del "$name"
  fi
  # Deleting the namespace deletes both ends; this is for an end left behind alone.
  ip link del "$host_if" 2>/dev/null || true
}

case "$cmd" in
  down) down ;;
  up)
    host_cidr="${3:?host address/prefix}"
    node_cidr="${4:?node address/prefix}"
    down
    ip netns add "$name"
    ip link add "$host_if" type veth peer name eth0 netns "$name"
    ip addr add "$host_cidr" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$name" addr add "$node_cidr" dev eth0
    ip -n "$name" link set lo up
    ip -n "$name" link set eth0 up
    ip -n "$name" route add default via "${host_cidr%/*}"
    # The node routes between its pods' bridge and eth0; these sysctls are per namespace.
    ip netns exec "$name" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.route_localnet=1
    # Service traffic between pods on one bridge must pass iptables (kube-proxy's DNAT).
    ip netns exec "$name" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
    ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
