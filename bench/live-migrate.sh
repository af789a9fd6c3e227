#!/bin/bash
# bench/live-migrate.sh - live migration with CRIU, in the pure cgroup v2 QEMU guest (where
# Debian 12's CRIU 3.17.1 passes `criu check`; this host's kernel fails it): the real
# `novabox --debug server migrate NAME --live --to exec:...` of
# test/integration/criu.test.ts ("... open file moves live") ROUNDS times in one guest boot, each a
# `--network none --userns host` busybox server with a counter and an open file (and one
# of the default kind, --userns auto: the "live migrate --userns auto" lines), between
# two namespaced "hosts" (network namespaces with their own state roots) in the guest.
# The command reports, and this script collects:
#   downtime   from the final `criu dump` on A to the server ACTIVE (restored) on B
#   total      from the command's start to the target's confirmation (pre-copy of the
#              writable layer, the pre-dump round, the dump, the restore, the commit)
#   predump, dump   criu's own times on A
# The guest's CPUs are emulated (TCG): figures are for comparing, not for a real host.
#
# Run as root:  ROUNDS=5 bench/live-migrate.sh
# Output: each round's line, then "live_<what> n= median= min= max= (ms)".
set -eo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-5}
[ "$(id -u)" = 0 ] || { echo "live-migrate.sh: must run as root" >&2; exit 1; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "live-migrate.sh: ROUNDS takes a whole number" >&2; exit 2; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
cd "$REPO"
test/vm/run.sh --timeout $((300 + ROUNDS * 120)) -- sh -c \
  "i=0; while [ \$i -lt $ROUNDS ]; do i=\$((i+1)); node node_modules/vitest/vitest.mjs run test/integration/criu.test.ts -t 'open file moves live' || exit 1; done" |
  tee "$OUT" | grep -E '^live migrate (--userns auto )?\(guest' || true
stat_line() { # NAME: values on stdin, one a line
  sort -n | awk -v n="$1" '{ v[NR] = $1 } END {
    if (!NR) { print "live_" n " n=0"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "live_%s n=%d median=%.0f min=%.0f max=%.0f (ms)\n", n, NR, m, v[1], v[NR] }'
}
grep -E '^live migrate \(guest\):' "$OUT" | sed -E 's/.*pre-dump ([0-9]+) ms.*/\1/' | stat_line predump
grep -E '^live migrate \(guest\):' "$OUT" | sed -E 's/.*final dump ([0-9]+) ms.*/\1/' | stat_line dump
grep -E '^live migrate \(guest\):' "$OUT" | sed -E 's/.*downtime ([0-9]+) ms.*/\1/' | stat_line downtime
grep -E '^live migrate \(guest\):' "$OUT" | sed -E 's/.*total ([0-9]+) ms.*/\1/' | stat_line total
# the default kind, --userns auto (the same id range leased on B, its root idmapped there)
grep -E '^live migrate --userns auto \(guest\):' "$OUT" | sed -E 's/.*downtime ([0-9]+) ms.*/\1/' | stat_line auto_downtime
grep -E '^live migrate --userns auto \(guest\):' "$OUT" | sed -E 's/.*total ([0-9]+) ms.*/\1/' | stat_line auto_total
if grep -q 'Tests .*failed' "$OUT" || ! grep -q '^live migrate (guest):' "$OUT"; then
  grep -E 'FAIL|Error|expected|✗|×' "$OUT" | head -40 >&2
  echo "live-migrate.sh: a round failed" >&2
  exit 1
fi
exit 0
