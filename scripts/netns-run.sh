#!/usr/bin/env bash
# Runs a command in a private network namespace of its own: `lo` up and a veth pair carrying test addresses
# (10.203.0.1 and 10.203.0.2). WebRTC tests need it: libnice does not gather loopback addresses, so ICE between a
# browser and the server on one machine needs an interface that is not `lo`; inside the namespace nothing can
# reach or be reached from the machine's real network (its default route leads back into it). Needs root (or user namespaces) and iproute2.
set -euo pipefail
if [[ "${FC25_NETNS:-}" != "1" ]]; then
  exec unshare --net --fork env FC25_NETNS=1 "$0" "$@"
fi
ip link set lo up
ip link add fc25v0 type veth peer name fc25v1
ip addr add 10.203.0.1/24 dev fc25v0
ip addr add 10.203.0.2/24 dev fc25v1
ip link set fc25v0 up
ip link set fc25v1 up
# Firefox gathers ICE candidates only on a machine with a default route. This one leads to the namespace's own
# other address: there is still no way out.
ip route add default via 10.203.0.2 dev fc25v0
exec "$@"
