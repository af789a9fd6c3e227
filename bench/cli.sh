#!/bin/bash
# bench/cli.sh - every command's cold CLI beside `node -e 0` and the anchors' own
# commands (lxc-ls, lxc-info, crun list/state, runc list/state), in the same rounds.
#
# Each candidate is one fresh process, as a shell script or CI runner calls it. Rounds
# run every candidate once, the starting candidate rotating (the anchors' bench_rounds),
# so line i of every sample file was measured in round i: "above node -e 0" is the median
# of the per-round differences, far steadier on a busy host than a difference of medians.
#
#   candidate   timed (run)                                   timed apart (stop)
#   node-e0     node -e 0
#   list        server list                 (LIST_N servers, default 4)
#   show        server show                 event: server event list     (a running server)
#   flavors     flavor list                 images: image list
#   create      server create --network none --wait          server delete --force
#   create-br   server create --wait (the private bridge)    server delete --force
#   stop        server stop                                   server start
#   pause       server pause                                  server unpause
#   exec        server exec SERVER -- true
#   run         run --rm --network none busybox true
#   run-br      run --rm busybox true (the private bridge)
#   lxc-ls lxc-info crun-list crun-state runc-list runc-state   (one running container each)
#
# Run as root from anywhere:   bench/cli.sh          ROUNDS=40 bench/cli.sh
# Knobs: ROUNDS (30), WARMUP (2), LIST_N (4), CANDIDATES (a subset, space-separated),
#        NOVABOX_BIN (another build's bin/novabox, to compare two builds run by run),
#        BENCH_STATE (tmpfs|disk, see README), SHARED_DIR, ANCHOR_DIR, KEEP_ROOTFS=1.
# Everything runs under a private state root (/run/novabox-bench-cli.*), its own bridge and
# /16 (bench/lib.sh private_network) and cgroup parent (novabox-bench-cli-<pid>); all of
# it, and the anchors' containers, is removed at exit, also on Ctrl-C.
#
# stdout: the table (markdown) and one result line per candidate:
#   cli_ms <candidate> median=.. p90=.. above_node=.. n=..
# stderr: progress, lines start with '#'.
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ -f "$ANCHORS/lib.sh" ] || bdie "no $ANCHORS/lib.sh (set SHARED_DIR)"
# shellcheck source=../../shared/bench/anchors/lib.sh
. "$ANCHORS/lib.sh"
need_root
need jq crun runc lxc-ls lxc-info lxc-start
# another build to time (its own checkout's bin/novabox, e.g. main's), same rounds and fixtures
NOVABOX=${NOVABOX_BIN:-$NOVABOX}
[ -x "$NOVABOX" ] || die "no $NOVABOX (npm run build)"

ROUNDS=${ROUNDS:-30}
WARMUP=${WARMUP:-2}
LIST_N=${LIST_N:-4}
ALL="node-e0 list show event flavors images create create-br stop pause exec run run-br lxc-ls lxc-info crun-list crun-state runc-list runc-state"
CANDS=${CANDIDATES:-$ALL}
export NOVABOX_CGROUP_PARENT=novabox-bench-cli-$$

ensure_rootfs
new_root cli
# the anchors' state dir, trap and cleanup (crun, runc, lxc, cgroups named $PREFIX*);
# script_cleanup (called first) removes novabox's servers and private root
setup_state cli
script_cleanup() {
  local ids d
  if [ -f "$NB_ROOT/novabox.db" ]; then
    ids=$(timeout 60 "$NOVABOX" server list -f value -c ID 2>/dev/null </dev/null)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && timeout -k 10 300 "$NOVABOX" server delete --force $ids >/dev/null 2>&1 </dev/null
  fi
  for d in /sys/fs/cgroup/*/"$NOVABOX_CGROUP_PARENT" /sys/fs/cgroup/"$NOVABOX_CGROUP_PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  cleanup_root "$NB_ROOT"
  remove_built_rootfs
}
machine_header
log "host: $(busy_note); state root: $NB_ROOT ($NB_ROOT_FS)"
hybrid_fix

nb() { "$NOVABOX" "$@" </dev/null; }
srv() { nb server create --image busybox --flavor c1.nano --network none --wait "$1" >/dev/null || die "cannot create server $1"; }

# ---- fixtures: servers to list, show, stop, pause and exec into; anchor containers
for ((i = 1; i <= LIST_N; i++)); do srv "ls$i"; done
LIST_TOTAL=$LIST_N
for c in $CANDS; do
  case $c in
    show | event | exec) [ -n "${HAVE_EX:-}" ] || { srv ex; HAVE_EX=1; LIST_TOTAL=$((LIST_TOTAL + 1)); } ;;
    stop) srv ss; LIST_TOTAL=$((LIST_TOTAL + 1)) ;;
    pause) srv pp; LIST_TOTAL=$((LIST_TOTAL + 1)) ;;
  esac
done
# busybox's image and the bridge exist before the first timed round
nb run --rm --network none busybox true || die "novabox run failed"
case " $CANDS " in *" create-br "* | *" run-br "*) nb run --rm busybox true || die "novabox run on the bridge failed" ;; esac

mkdir -p "$STATE/crun" "$STATE/runc" "$STATE/lxc"
SLEEP='["/bin/sleep","100000"]'
case " $CANDS " in *" crun-"*)
  make_bundle "$STATE/b-crun" "$SLEEP" "/$PREFIX/crun"
  crun --root "$STATE/crun" run -d --bundle "$STATE/b-crun" "$PREFIX-crun" </dev/null || die "crun run -d failed" ;;
esac
case " $CANDS " in *" runc-"*)
  make_bundle "$STATE/b-runc" "$SLEEP" "/$PREFIX/runc"
  runc --root "$STATE/runc" run -d --bundle "$STATE/b-runc" "$PREFIX-runc" </dev/null >/dev/null || die "runc run -d failed" ;;
esac
case " $CANDS " in *" lxc-"*)
  lxc-start -d -P "$STATE/lxc" -n "$PREFIX-lxc" -f "$LXC_CONF" -- /bin/sleep 100000 </dev/null || die "lxc-start failed" ;;
esac

# ---- candidates (bench_rounds calls run_C ROUND, then stop_C ROUND, timed apart)
run_node-e0() { node -e 0; }
run_list() { nb server list; }
run_show() { nb server show ex; }
run_event() { nb server event list ex; }
run_flavors() { nb flavor list; }
run_images() { nb image list; }
run_create() { nb server create --image busybox --flavor c1.nano --network none --wait "c$1"; }
stop_create() { nb server delete --force "c$1"; }
run_create-br() { nb server create --image busybox --flavor c1.nano --wait "b$1"; }
stop_create-br() { nb server delete --force "b$1"; }
run_stop() { nb server stop ss; }
stop_stop() { nb server start ss; }
run_pause() { nb server pause pp; }
stop_pause() { nb server unpause pp; }
run_exec() { nb server exec ex -- true; }
run_run() { nb run --rm --network none busybox true; }
run_run-br() { nb run --rm busybox true; }
run_lxc-ls() { lxc-ls -P "$STATE/lxc"; }
run_lxc-info() { lxc-info -P "$STATE/lxc" -n "$PREFIX-lxc"; }
run_crun-list() { crun --root "$STATE/crun" list; }
run_crun-state() { crun --root "$STATE/crun" state "$PREFIX-crun"; }
run_runc-list() { runc --root "$STATE/runc" list; }
run_runc-state() { runc --root "$STATE/runc" state "$PREFIX-runc"; }

for c in $CANDS; do declare -F "run_$c" >/dev/null || die "unknown candidate $c"; done
log "rounds=$ROUNDS warmup=$WARMUP candidates: $CANDS"
# shellcheck disable=SC2086
bench_rounds cli "$ROUNDS" "$WARMUP" $CANDS
log "host after: $(busy_note)"

# ---- table: one row per timed command
has() { case " $CANDS " in *" $1 "*) return 0 ;; esac; return 1; }
S() { echo "$STATE/cli.$1.$2.ms"; }
row() {   # row LABEL CANDIDATE run|stop ANCHOR_TEXT
  local f st med p90 above n
  f=$(S "$2" "$3")
  [ -s "$f" ] || return 0
  read -r med p90 < <(sample_stats "$f")
  above=-
  case $2 in node-e0 | lxc-* | crun-* | runc-*) ;; *) has node-e0 && above=$(paired "$f" "$(S node-e0 run)" diff) ;; esac
  [ "$above" != - ] && above="+$above"; above=${above/+-/-}
  n=$(grep -cE '^[0-9]' "$f")
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$med" "$p90" "$above" "$4"
  local tag=$2; [ "$3" = stop ] && tag+=:stop
  echo "cli_ms $tag median=$med p90=$p90 above_node=$above n=$n" >>"$STATE/lines"
}
anchor() {   # anchor CAND... -> "crun list 12.3 ms, ..." for the candidates measured
  local out="" c m
  for c in "$@"; do
    has "$c" || continue
    read -r m _ < <(sample_stats "$(S "$c" run)")
    out+="${out:+, }\`${c/-/ }\` $m ms"
  done
  echo "${out:-—}"
}
: >"$STATE/lines"
node_med=-
has node-e0 && read -r node_med _ < <(sample_stats "$(S node-e0 run)")
echo
echo "novabox cold CLI, $ROUNDS rounds, state on $NB_ROOT_FS, $(nproc) cpus, load $(cut -d' ' -f1-3 /proc/loadavg); \`node -e 0\` median $node_med ms"
echo
echo '| command (cold CLI) | wall, median ms | p90 | above `node -e 0` (paired) | anchor (median) |'
echo '| --- | ---: | ---: | ---: | --- |'
has node-e0 && row '`node -e 0`' node-e0 run ''
has list && row "\`server list\` ($LIST_TOTAL servers)" list run "$(anchor lxc-ls crun-list runc-list)"
has show && row '`server show`' show run "$(anchor lxc-info crun-state runc-state)"
has event && row '`server event list`' event run ''
has flavors && row '`flavor list`' flavors run ''
has images && row '`image list`' images run ''
has create && row '`server create --network none --wait`' create run ''
has create && row '`server delete --force` (of that)' create stop ''
has create-br && row '`server create --wait` (bridge)' create-br run ''
has create-br && row '`server delete --force` (bridge)' create-br stop ''
has stop && row '`server stop`' stop run ''
has stop && row '`server start`' stop stop ''
has pause && row '`server pause`' pause run ''
has pause && row '`server unpause`' pause stop ''
has exec && row '`server exec -- true`' exec run ''
has run && row '`run --rm --network none busybox true`' run run ''
has run-br && row '`run --rm busybox true` (bridge)' run-br run ''
for c in lxc-ls lxc-info crun-list crun-state runc-list runc-state; do has "$c" && row "\`${c/-/ }\`" "$c" run ''; done
echo
cat "$STATE/lines"
if [ -s "$STATE/cli.failed" ]; then log "failed during warm-up: $(tr '\n' ' ' <"$STATE/cli.failed")"; fi
