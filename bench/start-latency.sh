#!/bin/bash
# bench/start-latency.sh - `novabox run --rm` start-to-exit latency of /bin/true, in the
# same round-robin run as the anchors (crun, runc, lxc-execute, lxc-start, unshare,
# node-crun; see ../shared/bench/anchors/README.md) and Node's own floor `node -e 0`.
#
#   ROUNDS=40 bench/start-latency.sh            (as root, from anywhere)
#
# How: runs the shared anchors/start-latency.sh with its project hook
#   PROJECT_RUN='<repo>/bin/novabox run --rm --name {name} <NOVABOX_BENCH_OPTS> --rootfs {rootfs} {cmd}'
# and a private NOVABOX_ROOT (/run/novabox-bench-sl.XXXXXX, removed by PROJECT_CLEANUP
# and again by this script's trap). The node floor is an extra candidate `node-e0`
# (`node -e 0`) of the anchor's own loop: its run_node-e0 function is exported to the
# anchor script, which runs every run_<candidate> it is told about in ANCHOR_CANDIDATES.
# The raw per-round samples (KEEP_STATE=1) give p90 and the paired ratios/differences
# of the table; they are deleted at the end.
#
# Env: ROUNDS (40, passed as ANCHOR_ROUNDS), ANCHOR_WARMUP (3), ANCHOR_DIR
#      (/var/tmp/anchors; built with build-rootfs.sh if missing, and then removed at
#      exit unless KEEP_ROOTFS=1), SHARED_DIR (<repo>/../shared),
#      NOVABOX_BENCH_OPTS ("--memory 512m --pids-limit 1024 --network none": the anchors' limits,
#      and no network like theirs; bench/network.sh measures the bridge network),
#      WAIT_QUIET (0: seconds to wait for a running qemu-system to finish first),
#      BENCH_STATE (tmpfs: the private state root under /run; disk: under /var/tmp, on
#      the filesystem of /var/lib/novabox; the table's header says which it was).
# Output (stdout): the anchor's result lines, then a table and the line
#   "novabox above node -e 0: N ms (median of paired differences)".
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
[ -x "$ANCHORS/start-latency.sh" ] || bdie "no $ANCHORS/start-latency.sh (set SHARED_DIR)"
[ -x "$NOVABOX" ] || bdie "no $NOVABOX"
command -v jq >/dev/null || bdie "missing jq"

ROUNDS=${ROUNDS:-40}
NB_OPTS=${NOVABOX_BENCH_OPTS---memory 512m --pids-limit 1024 --network none}
anchor_run_setup sl

export PROJECT_LABEL=novabox
export PROJECT_RUN="$(printf %q "$NOVABOX") run --rm --name {name} $NB_OPTS --rootfs {rootfs} {cmd}"
export PROJECT_CLEANUP="bash $(printf %q "$HERE/lib.sh") cleanup-root $(printf %q "$NB_ROOT")"
run_node-e0() { node -e 0; }
export -f run_node-e0
export ANCHOR_CANDIDATES=${ANCHOR_CANDIDATES:-crun runc lxc-execute lxc-start unshare node-crun node-e0}
export ANCHOR_ROUNDS=$ROUNDS KEEP_STATE=1
blog "novabox hook: $PROJECT_RUN  (NOVABOX_ROOT=$NB_ROOT)"

# Foreground, so that Ctrl-C reaches the anchor too (it cleans up, then our trap runs).
# Its pid (kept through exec) names its state dir.
busy_watch_start "$TMP/busy"
bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$TMP/apid" "$ANCHORS/start-latency.sh"
arc=$?
busy_watch_stop
ASTATE=/run/anchors/anc-sl-$(cat "$TMP/apid")
[ -d "$ASTATE" ] || bdie "anchor run failed (rc=$arc): no samples in $ASTATE"

# ---- table ------------------------------------------------------------------------
S=$ASTATE/sl
P=$S.project.run.ms
echo
echo "# start latency, ms (rounds=$ROUNDS, $(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(busy_note), during the run $(busy_watch_report))"
echo "# novabox state root: ${NB_ROOT_FS:-?} (BENCH_STATE=${BENCH_STATE:-tmpfs}); counted: the rounds that succeeded (a failed round drops out of the medians)"
printf '%-14s %9s %9s %16s %9s\n' candidate median p90 novabox/X counted
for c in project $ANCHOR_CANDIDATES; do
  lbl=$c; [ "$c" = project ] && lbl=novabox
  f=$S.$c.run.ms
  if [ ! -f "$f" ] || grep -q "^$c " "$S.failed" 2>/dev/null; then
    printf '%-14s %9s %9s %16s %9s\n' "$lbl" failed - - "$( [ -f "$f" ] && grep -cE "^[0-9]+(\.[0-9]+)?$" "$f" || echo 0)/$ROUNDS"; continue
  fi
  read -r med p90 < <(sample_stats "$f")
  r=-; [ "$c" != project ] && r=$(paired "$P" "$f" ratio)
  printf '%-14s %9s %9s %16s %9s\n' "$lbl" "$med" "$p90" "$r" "$(grep -cE "^[0-9]+(\.[0-9]+)?$" "$f")/$ROUNDS"
done
if [ -f "$S.node-e0.run.ms" ] && ! grep -q '^project \|^node-e0 ' "$S.failed"; then
  echo "novabox above node -e 0: $(paired "$P" "$S.node-e0.run.ms" diff) ms (median of paired differences)"
fi
if [ -f "$S.crun.run.ms" ] && ! grep -q '^project \|^crun ' "$S.failed"; then
  echo "novabox above crun: $(paired "$P" "$S.crun.run.ms" diff) ms (median of paired differences)"
fi
# DIFF_AGAINST="A B": "A above B" for pairs of candidates (bench/userns.sh); "project" is novabox
for pair in ${DIFF_AGAINST:-}; do
  a=${pair%%/*} b=${pair#*/}
  fa=$S.$a.run.ms fb=$S.$b.run.ms
  if [ -f "$fa" ] && [ -f "$fb" ] && ! grep -q "^$a \|^$b " "$S.failed"; then
    la=$a lb=$b; [ "$a" = project ] && la=novabox; [ "$b" = project ] && lb=novabox
    echo "$la above $lb: $(paired "$fa" "$fb" diff) ms (median of paired differences), ratio $(paired "$fa" "$fb" ratio)"
  fi
done
[ -s "$ASTATE/project.log" ] && { blog "novabox output (last lines):"; tail -n 3 "$ASTATE/project.log" | sed 's/^/#   /' >&2; }
exit "$arc"
