#!/bin/bash
# bench/trace-medians.sh - where a `novabox run --rm` spends its time: the median of each
# NOVABOX_TRACE milestone's delta over many runs, with the wall time of the run and of
# `node -e 0` measured in the same rounds (interleaved, so that load on a shared host
# touches both alike).
#
#   ROUNDS=20 bench/trace-medians.sh [novabox run options and command]   (as root)
#
# Default command: --network none --memory 512m --pids-limit 1024 --rootfs <anchor rootfs> true
# (the options start-latency.sh uses). A private NOVABOX_ROOT (/run/novabox-bench-tm.*) is
# removed at exit. Env: ROUNDS (20), NOVABOX (this checkout's bin/novabox), WAIT_QUIET (0).
# Output (stdout): one line per milestone "median_ms  label", then "wall" and "node -e 0".
# A milestone's delta is the time since the previous one: the first ("main loaded")
# includes Node's own start; "wall" is fork to exit as seen by this script.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
ROUNDS=${ROUNDS:-20}
anchor_run_setup tm
if [ $# -eq 0 ]; then
  set -- --network none --memory 512m --pids-limit 1024 --rootfs "$ANCHOR_DIR/bundle/rootfs" true
fi
out=$TMP/trace
now_us() { local t; t=$(date +%s%N); echo $((t / 1000)); }
# one warm-up run writes the code cache of `run` if a build removed it
NOVABOX_ROOT=$NB_ROOT "$NOVABOX" run --rm "$@" >/dev/null 2>&1
for ((i = 0; i < ROUNDS; i++)); do
  s=$(now_us)
  NOVABOX_ROOT=$NB_ROOT NOVABOX_TRACE=1 "$NOVABOX" run --rm "$@" 2>>"$out" >/dev/null ||
    bdie "novabox run failed (round $i)"
  e=$(now_us)
  echo "trace 0 ms +$(((e - s) / 1000)).$(printf %03d $(((e - s) % 1000)))  wall" >>"$out"
  s=$(now_us)
  node -e 0
  e=$(now_us)
  echo "trace 0 ms +$(((e - s) / 1000)).$(printf %03d $(((e - s) % 1000)))  node -e 0" >>"$out"
done
blog "rounds=$ROUNDS $(busy_note)"
node -e '
  const order = [], byLabel = new Map();
  for (const line of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
    const m = /^trace\s+\S+ ms\s+\+\s*([\d.]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    if (!byLabel.has(m[2])) { byLabel.set(m[2], []); order.push(m[2]); }
    byLabel.get(m[2]).push(Number(m[1]));
  }
  const median = (v) => { v.sort((a, b) => a - b); const h = v.length >> 1; return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2; };
  for (const l of order) console.log(`${median(byLabel.get(l)).toFixed(2).padStart(8)}  ${l}`);
' "$out"
