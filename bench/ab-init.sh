#!/bin/bash
# bench/ab-init.sh - A/B of the container init's two native phases between two novabox
# builds: "GO sent" -> "exec event" (the init's ops: mounts, pivot_root, caps, seccomp,
# execve) and "exec event" -> "exit event" (the command runs, then the kernel tears the
# container's namespaces down). Runs alternate A, B, A, B... so that load on a shared host
# touches both alike; reports each side's median and the median of the paired differences.
#
#   ROUNDS=40 bench/ab-init.sh A_NOVABOX B_NOVABOX [novabox run options and command]  (root)
#
# Default command: --network none --memory 512m --pids-limit 1024 --rootfs <anchor rootfs>
# true (as start-latency.sh). Both builds use one private NOVABOX_ROOT, removed at exit.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
[ $# -ge 2 ] || bdie "usage: bench/ab-init.sh A_NOVABOX B_NOVABOX [run options and command]"
A=$1 B=$2
shift 2
ROUNDS=${ROUNDS:-40}
anchor_run_setup ab
if [ $# -eq 0 ]; then
  set -- --network none --memory 512m --pids-limit 1024 --rootfs "$ANCHOR_DIR/bundle/rootfs" true
fi
for bin in "$A" "$B"; do # warm-up: code caches, page cache
  NOVABOX_ROOT=$NB_ROOT env -u NODE_EXTRA_CA_CERTS "$bin" run --rm "$@" >/dev/null 2>&1 || bdie "$bin run failed"
done
run_side() { # BIN SIDE
  NOVABOX_ROOT=$NB_ROOT NOVABOX_TRACE=1 env -u NODE_EXTRA_CA_CERTS "$1" run --rm "${@:3}" 2>&1 >/dev/null |
    grep -E '^trace .*(exec event|exit event)$' >>"$TMP/$2"
}
for ((i = 0; i < ROUNDS; i++)); do
  run_side "$A" a "$@"
  run_side "$B" b "$@"
done
blog "rounds=$ROUNDS $(busy_note)"
node -e '
  const fs = require("fs");
  const read = (f) => {
    const go = [], exit = [];
    for (const line of fs.readFileSync(f, "utf8").split("\n")) {
      const m = /^trace\s+\S+ ms\s+\+\s*([\d.]+)\s+(exec|exit) event$/.exec(line);
      if (m) (m[2] === "exec" ? go : exit).push(Number(m[1]));
    }
    return { go, exit };
  };
  const median = (v) => { const s = [...v].sort((x, y) => x - y); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
  const a = read(process.argv[1]), b = read(process.argv[2]);
  for (const k of ["go", "exit"]) {
    const n = Math.min(a[k].length, b[k].length);
    const d = a[k].slice(0, n).map((x, i) => b[k][i] - x);
    const label = k === "go" ? "GO sent -> exec event" : "exec event -> exit event";
    console.log(`${label.padEnd(26)} A ${median(a[k]).toFixed(3)} ms  B ${median(b[k]).toFixed(3)} ms  paired B-A ${median(d).toFixed(3)} ms  (n=${n})`);
  }
' "$TMP/a" "$TMP/b"
