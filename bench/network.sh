#!/bin/bash
# bench/network.sh - the cost of novabox's bridge network per container, measured three ways
# in the same rounds (round-robin, so host load hits all alike):
#
#   netlink   novabox's own path, timed inside the CLI (NOVABOX_TRACE milestones of
#             `novabox run --rm busybox true`): "bridge ready" + "veth attached" = ensure the
#             bridge, one RTM_NEWLINK making the veth pair with the peer inside the
#             container's netns, then lo/eth0 up, address and default route over a
#             netlink socket opened in that netns (native-bindings/src/net.c).
#             Teardown: "undone: veth" (RTM_DELLINK of the host end after exit).
#   iproute2  the same configuration with `ip` (and `nsenter -n ip`) into a holder
#             process's fresh netns, six commands, wall time (what execa + iproute2
#             would cost, minus Node's spawn overhead).
#   run       start-to-exit of `novabox run --rm busybox true` with --network novabox and
#             with --network none (the difference is the whole price of the network,
#             store open for the lease included).
#
# Run as root:  bench/network.sh          ROUNDS (30)
# Private state root and bridge (removed at exit, also on Ctrl-C). Traffic: none; the
# holder namespaces and containers are only configured, never sent anything.
# stdout: result lines "<metric> <label> median=… p90=… n=…" and ratios; stderr: progress.
set -o pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

ROUNDS=${ROUNDS:-30}
[ "$(id -u)" = 0 ] || bdie "run as root"
command -v ip >/dev/null && command -v nsenter >/dev/null || bdie "needs ip (iproute2) and nsenter (util-linux)"

TMP=$(mktemp -d /run/novabox-bench-net-out.XXXXXX)
NB_ROOT=""
HOLDER=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -n "$HOLDER" ] && kill -KILL "$HOLDER" 2>/dev/null
  ip link del nbiprobe0 2>/dev/null
  [ -n "$NB_ROOT" ] && cleanup_root "$NB_ROOT"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'blog interrupted; exit 130' INT TERM HUP
wait_quiet
new_root net
BRIDGE=$(jq -r .network.bridge "$NB_ROOT/config.json")
SUBNET=$(jq -r .network.subnet "$NB_ROOT/config.json")
PREFIX=${SUBNET%.0.0/16}
export NOVABOX_CGROUP_PARENT=novabox-bench-$$

now_ms() { local t; t=$(date +%s%N); echo "$((t / 1000))" | awk '{ printf "%.3f\n", $1 / 1000 }'; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", b - a }'; }

blog "warm-up: image, bridge $BRIDGE ($SUBNET)"
"$NOVABOX" run --rm busybox true >/dev/null 2>&1 </dev/null || bdie "novabox run --rm busybox true failed"
"$NOVABOX" run --rm --network none busybox true >/dev/null 2>&1 </dev/null

for ((i = 1; i <= ROUNDS; i++)); do
  # 1. novabox, bridge network, with the trace
  t0=$(now_ms)
  NOVABOX_TRACE=1 "$NOVABOX" run --rm busybox true </dev/null 2>"$TMP/trace" >/dev/null
  t1=$(now_ms)
  ms_between "$t0" "$t1" >>"$TMP/run-novabox"
  awk '/ bridge ready$/ { s += $5 } / veth attached$/ { s += $5; ok = 1 } END { if (ok) printf "%.2f\n", s; else print "fail" }' "$TMP/trace" >>"$TMP/netlink"
  awk '/ undone: veth$/ { printf "%.2f\n", $5; ok = 1 } END { if (!ok) print "fail" }' "$TMP/trace" >>"$TMP/netlink-down"

  # 2. novabox, no network
  t0=$(now_ms)
  "$NOVABOX" run --rm --network none busybox true </dev/null >/dev/null 2>&1
  t1=$(now_ms)
  ms_between "$t0" "$t1" >>"$TMP/run-none"

  # 3. iproute2: the same setup into a holder's fresh netns (holder start not timed)
  unshare -n sleep 30 &
  HOLDER=$!
  for ((w = 0; w < 100; w++)); do [ "$(readlink /proc/$HOLDER/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.01; done
  addr=$PREFIX.255.$((i % 250 + 2))
  t0=$(now_ms)
  if ip link add nbiprobe0 master "$BRIDGE" up type veth peer name eth0 netns "$HOLDER" &&
    nsenter -t "$HOLDER" -n ip link set lo up &&
    nsenter -t "$HOLDER" -n ip link set eth0 up &&
    nsenter -t "$HOLDER" -n ip addr add "$addr/16" dev eth0 &&
    nsenter -t "$HOLDER" -n ip route add default via "$PREFIX.0.1"; then
    t1=$(now_ms)
    ms_between "$t0" "$t1" >>"$TMP/iproute2"
  else
    echo fail >>"$TMP/iproute2"
  fi
  t0=$(now_ms)
  ip link del nbiprobe0 2>/dev/null
  t1=$(now_ms)
  ms_between "$t0" "$t1" >>"$TMP/iproute2-down"
  kill -KILL "$HOLDER" 2>/dev/null
  wait "$HOLDER" 2>/dev/null
  HOLDER=""
  ((i % 10 == 0)) && blog "round $i/$ROUNDS"
done

line() { # metric label file
  local s n
  s=$(sample_stats "$3")
  n=$(grep -cE '^[0-9.]+$' "$3")
  echo "$1 $2 median=${s% *} p90=${s#* } n=$n"
}
line network_setup_ms novabox-netlink "$TMP/netlink"
line network_setup_ms iproute2 "$TMP/iproute2"
line network_teardown_ms novabox-netlink "$TMP/netlink-down"
line network_teardown_ms iproute2 "$TMP/iproute2-down"
echo "network_setup_ratio iproute2/novabox-netlink median=$(paired "$TMP/iproute2" "$TMP/netlink" ratio)"
line run_ms novabox-bridge "$TMP/run-novabox"
line run_ms novabox-none "$TMP/run-none"
echo "run_network_cost_ms bridge-minus-none median=$(paired "$TMP/run-novabox" "$TMP/run-none" diff)"
left=0
for d in /sys/class/net/nbv*; do
  [ -e "$d" ] && grep -q " $BRIDGE " "$d/ifalias" 2>/dev/null && left=$((left + 1))
done
echo "leftover host_veths=$left"
