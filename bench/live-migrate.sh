#!/bin/bash
# bench/live-migrate.sh - the CRIU half of a live migration, in the pure cgroup v2 QEMU
# guest (where Debian 12's CRIU 3.17.1 passes `criu check`; this host's kernel fails it):
# test/integration/criu.test.ts's "open file" cases ROUNDS times in one guest boot, each
# a `--network none --userns host` busybox server with a counter and an open file:
#   one host   pre-dump while it runs, final dump (--prev-images-dir), its overlay mounted
#              again, restore; downtime = dump + root + restore, total = from the pre-dump
#   A to B     the same between two state roots (the stream exported and imported between
#              the dump and the restore, not timed): pre-dump, dump, restore on B
# The guest's CPUs are emulated (TCG): figures are for comparing, not for a real host.
#
# Run as root:  ROUNDS=5 bench/live-migrate.sh
# Output: each round's lines, then "live_<what> n= median= min= max= (ms)".
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
  "i=0; while [ \$i -lt $ROUNDS ]; do i=\$((i+1)); node node_modules/vitest/vitest.mjs run test/integration/criu.test.ts -t 'open file' || exit 1; done" |
  tee "$OUT" | grep -E '^criu \(guest' || true
stat_line() { # NAME: values on stdin, one a line
  sort -n | awk -v n="$1" '{ v[NR] = $1 } END {
    if (!NR) { print "live_" n " n=0"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "live_%s n=%d median=%.0f min=%.0f max=%.0f (ms)\n", n, NR, m, v[1], v[NR] }'
}
grep -E '^criu \(guest\):' "$OUT" | sed -E 's/.*pre-dump ([0-9]+) ms.*/\1/' | stat_line predump
grep -E '^criu \(guest\):' "$OUT" | sed -E 's/.*, dump ([0-9]+) ms.*/\1/' | stat_line dump
grep -E '^criu \(guest\):' "$OUT" | sed -E 's/.*restore ([0-9]+) ms.*/\1/' | stat_line restore
grep -E '^criu \(guest\):' "$OUT" | sed -E 's/.*downtime ([0-9]+) ms.*/\1/' | stat_line downtime
grep -E '^criu \(guest\):' "$OUT" | sed -E 's/.*total ([0-9]+) ms.*/\1/' | stat_line total
grep -E '^criu \(guest, A to B\):' "$OUT" | sed -E 's/.*restore on B ([0-9]+) ms.*/\1/' | stat_line restore_on_b
if grep -q 'Tests .*failed' "$OUT"; then
  grep -E 'FAIL|Error|expected|✗|×' "$OUT" | head -40 >&2
  echo "live-migrate.sh: a round failed" >&2
  exit 1
fi
exit 0
