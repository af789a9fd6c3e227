#!/bin/bash
# bench/servers.sh - novabox servers (long-lived system containers) side by side with
# crun, runc and LXC, through the shared anchor scripts, plus novabox's batch path.
#
#   1. cycle   ../shared/bench/anchors/full-cycle.sh with the project hook
#              up:   bin/novabox server create --image busybox --flavor c1.nano --wait {name}
#              down: bin/novabox server delete --force {name}
#              (one cold CLI per step, round-robin with crun, runc and lxc)
#   2. density ../shared/bench/anchors/density.sh with the same hook: N servers started
#              one at a time, like the anchors' containers
#   3. batch   novabox's own batch path: one `server create --min N --max N` timed as a
#              whole, memory per server (same method as density.sh: wait, sync +
#              drop_caches, wait for MemAvailable to settle), then one
#              `server delete --force` of all, then a check that nothing is left
#
# Run as root from anywhere:  bench/servers.sh            (N=100 for both density parts)
#                             BATCH_N=500 bench/servers.sh
# Knobs (environment):
#   DENSITY_N (100)          servers/containers per runtime in density.sh (ANCHOR_DENSITY_N)
#   BATCH_N (100)            servers in the --min/--max batch (novabox allows up to 1000)
#   PHASES ("cycle density batch")  which parts to run
#   IMAGE (busybox), FLAVOR (c1.nano)
#   NETWORK (none)           like the anchors (no network); "novabox" adds the bridge + veth
#                            per server (bench/network.sh measures that part alone)
#   WAIT_QUIET (600)         seconds to wait for a qemu-system or another bench/*.sh to end
#   SHARED_DIR               default: <repo>/../shared;  ANCHOR_DIR (/var/tmp/anchors)
#   ANCHOR_ROUNDS, ANCHOR_WARMUP, ANCHOR_SETTLE_S, ANCHOR_DROP_CACHES: passed to the anchors
#   CYCLE_TIMEOUT (1200), DENSITY_TIMEOUT (3600), CLI_TIMEOUT (900): bounds, in seconds
#   KEEP_ROOTFS=1            keep $ANCHOR_DIR if this run had to build it
#   KEEP_LOGS=1              keep the work dir (anchor logs) instead of deleting it
#
# Everything runs under a private state root (/run/novabox-bench-servers.XXXXXX, exported as
# NOVABOX_ROOT) and a private cgroup parent (novabox-bench-<pid>, NOVABOX_CGROUP_PARENT), so
# nothing collides with other novabox users. All of it is removed at exit, also on Ctrl-C.
# No network traffic: the busybox image is built locally, the anchors use a local rootfs.
#
# stdout: result lines "<metric> <label> key=value ..." (the anchors' lines verbatim, then
# cycle_up_ratio/cycle_down_ratio, batch_*, leftover); stderr: progress, lines start with '#'.
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# REPO, SHARED_DIR, ANCHORS, NOVABOX, cpu_stat and the other helpers of this folder
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ -f "$ANCHORS/lib.sh" ] || { echo "# FATAL: no $ANCHORS/lib.sh (set SHARED_DIR)" >&2; exit 1; }
# The anchors' helpers: log/die, stats, paired_ratio, elapsed_ms, settle_mem, used_kb,
# kernel_kb, pid_list, rss_pss_kb (the memory method of density.sh). It also unsets
# NODE_EXTRA_CA_CERTS/NODE_OPTIONS, as every anchor script does for its candidates.
# shellcheck source=../../shared/bench/anchors/lib.sh
. "$ANCHORS/lib.sh"

need_root
need jq timeout
[ -x "$NOVABOX" ] || die "no $NOVABOX"

DENSITY_N=${DENSITY_N:-100}
BATCH_N=${BATCH_N:-100}
PHASES=${PHASES:-cycle density batch}
IMAGE=${IMAGE:-busybox}
NETWORK=${NETWORK:-none}
FLAVOR=${FLAVOR:-c1.nano}
WAIT_QUIET=${WAIT_QUIET:-600}
CYCLE_TIMEOUT=${CYCLE_TIMEOUT:-1200}
DENSITY_TIMEOUT=${DENSITY_TIMEOUT:-3600}
CLI_TIMEOUT=${CLI_TIMEOUT:-900}
SETTLE=${ANCHOR_SETTLE_S:-2}
LABEL=novabox

PARENT=novabox-bench-$$
NB_ROOT=""            # set once created
W=""                  # work dir (logs, samples)
CHILD=""              # pid of a bounded background command (timeout ...)
WATCH_PID=""
ROOTFS_BUILT=""
CLEANING=""

# ---- cleanup --------------------------------------------------------------------
# nb() runs the CLI against the private root, bounded.
nb() { timeout -k 10 "${NB_TIMEOUT:-120}" "$NOVABOX" "$@" </dev/null 8>&- 9>&-; }

# our_monitors -> pids of novabox-monitor processes tagged "<parent>/..." (argv[1])
our_monitors() {
  local p c a
  for p in /proc/[0-9]*; do
    read -r c 2>/dev/null <"$p/comm" || continue
    [ "$c" = novabox-monitor ] || continue
    mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
    case ${a[1]:-} in "$PARENT"/*) echo "${p#/proc/}" ;; esac
  done
}
# in_parent_cgroup PID -> true if the process sits in a cgroup below our parent
in_parent_cgroup() {
  local l
  { l=$(<"/proc/$1/cgroup"); } 2>/dev/null || return 1
  case $l in *":/$PARENT/"*) return 0 ;; esac
  return 1
}
# our_cgroup_procs -> pids in any cgroup below our parent (any hierarchy)
our_cgroup_procs() {
  local f
  for f in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
    [ -d "$f" ] || continue
    find "$f" -name cgroup.procs 2>/dev/null | while read -r f2; do cat "$f2" 2>/dev/null; done
  done | sort -un
}
# leftovers -> "monitors=M inits=I cgroup_procs=P cgroup_dirs=C server_dirs=S"
leftovers() {
  local m i=0 p c cp cg sd=0
  m=$(our_monitors | grep -c .)
  for p in $(our_cgroup_procs); do
    read -r c 2>/dev/null <"/proc/$p/comm" || continue
    case $c in *novabox-init) i=$((i + 1)) ;; esac
  done
  cp=$(our_cgroup_procs | grep -c .)
  cg=$(for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do [ -d "$d" ] && find "$d" -mindepth 1 -type d; done 2>/dev/null | grep -c .)
  [ -n "$NB_ROOT" ] && [ -d "$NB_ROOT/servers" ] && sd=$(find "$NB_ROOT/servers" -mindepth 1 -maxdepth 1 | grep -c .)
  echo "monitors=$m inits=$i cgroup_procs=$cp cgroup_dirs=$cg server_dirs=$sd"
}
# wait_clean SECONDS -> waits (bounded) until leftovers are all zero; sets LEFT
wait_clean() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    LEFT=$(leftovers)
    [ "$LEFT" = "monitors=0 inits=0 cgroup_procs=0 cgroup_dirs=0 server_dirs=0" ] && return 0
    sleep 0.2
  done
  return 1
}
# check_phase PHASE: result line saying what this phase left behind
check_phase() {
  local ok=yes
  wait_clean 10 || ok=no
  echo "leftover $LABEL phase=$1 $LEFT clean=$ok"
  [ $ok = yes ] || log "WARNING: phase $1 left something behind ($LEFT); removing it before going on"
  [ $ok = yes ] || purge_servers
}
# purge_servers: delete every server of the private root, then kill and remove what is left
purge_servers() {
  local ids p d i
  if [ -n "$NB_ROOT" ] && [ -f "$NB_ROOT/novabox.db" ]; then
    ids=$(NB_TIMEOUT=120 nb server list -f value -c ID 2>/dev/null)
    if [ -n "$ids" ]; then
      log "deleting $(echo "$ids" | grep -c .) leftover server(s)"
      # shellcheck disable=SC2086
      echo "$ids" | xargs -r -n 100 timeout -k 10 600 "$NOVABOX" server delete --force >/dev/null 2>&1 </dev/null
    fi
  fi
  for p in $(our_cgroup_procs); do kill -KILL "$p" 2>/dev/null; done
  for p in $(our_monitors); do kill -KILL "$p" 2>/dev/null; done
  for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
    [ -d "$d" ] || continue
    for ((i = 0; i < 10; i++)); do
      find "$d" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
      find "$d" -mindepth 1 -type d 2>/dev/null | grep -q . || break
      for p in $(find "$d" -name cgroup.procs -exec cat {} \; 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
      sleep 0.3
    done
  done
  if [ -n "$NB_ROOT" ] && [ -d "$NB_ROOT/servers" ]; then
    find "$NB_ROOT/servers" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null
  fi
}
stop_child() {   # TERM the running bounded command (timeout forwards it), wait up to 330 s
  local i
  [ -n "$CHILD" ] || return 0
  if kill -0 "$CHILD" 2>/dev/null; then
    log "stopping the running step (pid $CHILD) and waiting for its own cleanup"
    kill -TERM "$CHILD" 2>/dev/null
    for ((i = 0; i < 330; i++)); do kill -0 "$CHILD" 2>/dev/null || break; sleep 1; done
  fi
  wait "$CHILD" 2>/dev/null
  CHILD=""
}
cleanup() {
  local rc=$? d
  [ -n "$CLEANING" ] && return; CLEANING=1
  exec 1>&8 2>&9                # a signal may arrive inside a redirected step (bg_run)
  trap '' INT TERM HUP          # a second Ctrl-C must not cut the cleanup short
  trap - EXIT
  stop_child
  if [ -n "$WATCH_PID" ]; then kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null; WATCH_PID=""; fi
  purge_servers
  for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  # the anchors' KEEP_STATE dirs (named in their stderr) and their /run/anchors
  if [ -n "$W" ]; then
    for d in "$W"/*.pid; do
      [ -f "$d" ] || continue
      d=$(<"$d"); [[ $d =~ ^[0-9]+$ ]] || continue
      rm -rf /run/anchors/anc-[a-z]*-"$d"
    done
  fi
  rmdir /run/anchors 2>/dev/null
  if [ -n "$NB_ROOT" ] && [ -f "$NB_ROOT/config.json" ]; then   # the private bridge (see setup)
    nft delete table ip "novabox_nbs$$" 2>/dev/null
    ip link del "nbs$$" 2>/dev/null
  fi
  case $NB_ROOT in /run/novabox-bench-servers.*) rm -rf "$NB_ROOT" ;; esac
  if [ -n "$ROOTFS_BUILT" ] && [ -z "${KEEP_ROOTFS:-}" ]; then
    # not while an anchor run of someone else uses it, nor with anything mounted below it
    if ls -d /run/anchors/anc-* >/dev/null 2>&1 || awk -v b="$ANCHOR_DIR" 'index($5, b"/")==1 || $5==b' /proc/self/mountinfo | grep -q .; then
      log "not removing $ANCHOR_DIR: another anchor run may be using it"
    else
      rm -rf "$ANCHOR_DIR"; log "removed $ANCHOR_DIR (built by this run)"
    fi
  fi
  # final check: nothing of ours left anywhere
  local m p c
  m=$(our_monitors | grep -c .)
  p=$(our_cgroup_procs | grep -c .)
  c=$(ls -d /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT" 2>/dev/null | grep -c .)
  echo "leftover $LABEL phase=exit monitors=$m cgroup_procs=$p parent_cgroup_dirs=$c root_exists=$([ -n "$NB_ROOT" ] && [ -e "$NB_ROOT" ] && echo 1 || echo 0)"
  if [ -n "$W" ]; then
    if [ -n "${KEEP_LOGS:-}" ]; then log "logs kept in $W"; else rm -rf "$W"; fi
  fi
  exit $rc
}
exec 8>&1 9>&2                  # the script's own stdout/stderr, for the traps
trap cleanup EXIT
trap 'exec 1>&8 2>&9; log "interrupted"; exit 130' INT TERM HUP

# bg_run SECONDS CMD... : run bounded, in the background so that a signal reaches our
# trap at once; sets RC. (timeout gives the command its own process group.)
bg_run() {
  local t=$1; shift
  timeout -k 300 "$t" "$@" 8>&- 9>&- &
  CHILD=$!
  wait "$CHILD"; RC=$?
  CHILD=""
}

# ---- host quietness ---------------------------------------------------------------
# is_ours PID: PID is this script, one of its ancestors or one of its descendants
ANCESTORS=" "
p=$$; while [ -n "$p" ] && [ "$p" -gt 1 ]; do ANCESTORS+="$p "; p=$(awk '/^PPid:/{print $2}' "/proc/$p/status" 2>/dev/null); done
is_ours() {
  local q=$1 d
  case $ANCESTORS in *" $q "*) return 0 ;; esac
  for ((d = 0; d < 64; d++)); do
    q=$(awk '/^PPid:/{print $2}' "/proc/$q/status" 2>/dev/null)
    [ -n "$q" ] && [ "$q" -gt 1 ] || return 1
    [ "$q" = $$ ] && return 0
  done
  return 1
}
# busy_procs -> "pid cmdline" of qemu-system processes and other benchmark scripts
busy_procs() {
  local pid cmd
  pgrep -af '^[^ ]*qemu-system|^([^ ]*/)?(ba)?sh( -[^ ]+)* [^ ]*bench/[A-Za-z0-9_.-]+\.sh' 2>/dev/null |
    while read -r pid cmd; do is_ours "$pid" || echo "$pid $cmd"; done
}
wait_for_quiet() {
  local i=0 b
  while b=$(busy_procs) && [ -n "$b" ]; do
    if [ "$i" -ge "$WAIT_QUIET" ]; then
      log "WARNING: still busy after ${WAIT_QUIET}s; measuring anyway:"; echo "$b" | sed 's/^/#   /' >&2
      QUIET_NOTE="still busy after waiting ${i}s: $(echo "$b" | awk '{print $2}' | xargs -n1 basename | sort | uniq -c | xargs)"
      return 0
    fi
    if [ "$i" = 0 ]; then log "waiting (up to ${WAIT_QUIET}s) for:"; echo "$b" | sed 's/^/#   /' >&2; fi
    sleep 10; i=$((i + 10))
  done
  QUIET_NOTE="quiet after waiting ${i}s"
}
# watcher: every 5 s, the 1-min load and whether a qemu-system / other benchmark runs
watch_start() {
  cpu_stat >"$W/cpu0"
  ( trap - EXIT INT TERM HUP
    while :; do
      b=0; [ -n "$(busy_procs)" ] && b=1
      echo "$(cut -d' ' -f1 /proc/loadavg) $b"
      sleep 5
    done ) >"$W/watch" 2>/dev/null &
  WATCH_PID=$!
}
watch_report() {   # -> "load_mean= load_max= busy_samples=K/N host_cpu=P%"
  cpu_stat >"$W/cpu1"
  awk '{ s+=$1; if ($1>m) m=$1; b+=$2; n++ } END { if (n) printf "load1_mean=%.2f load1_max=%.2f busy_samples=%d/%d", s/n, m, b, n }' "$W/watch"
  cat "$W/cpu0" "$W/cpu1" | awk 'NR==1{t=$1;i=$2} NR==2{ if ($1>t) printf " host_cpu=%.0f%%", 100*(1-($2-i)/($1-t)) }'
}

# ---- setup ---------------------------------------------------------------------------
W=$(mktemp -d /tmp/novabox-bench-servers.XXXXXX) || die "cannot make a work dir"
if ! { [ -x "$ROOTFS/bin/busybox" ] && [ -f "$BUNDLE/config.json" ] && [ -f "$LXC_CONF" ]; }; then
  [ -e "$ANCHOR_DIR" ] || ROOTFS_BUILT=1
  log "building the anchor rootfs in $ANCHOR_DIR (untimed)"
  "$ANCHORS/build-rootfs.sh" "$ANCHOR_DIR" >&2 || die "build-rootfs.sh failed"
fi
NB_ROOT=$(mktemp -d /run/novabox-bench-servers.XXXXXX) || die "cannot make a state root"
export NOVABOX_ROOT=$NB_ROOT NOVABOX_CGROUP_PARENT=$PARENT ANCHOR_DIR
# A bridge and /16 of this run's own (NETWORK=novabox), never the host's novabox0: the
# first 10.x.0.0/16 (x = 150..249) that no route of the host is inside of.
for x in $(seq 150 249); do
  awk 'NR > 1 { print $2 }' /proc/net/route | grep -qi "$(printf '%02X0A$' "$x")" && continue
  printf '{"network": {"bridge": "nbs%s", "subnet": "10.%s.0.0/16"}}\n' "$$" "$x" >"$NB_ROOT/config.json"
  break
done

log "uptime:$(uptime)"
log "repo=$REPO anchors=$ANCHORS NOVABOX_ROOT=$NB_ROOT NOVABOX_CGROUP_PARENT=$PARENT"
log "phases: $PHASES; density N=$DENSITY_N, batch N=$BATCH_N, image=$IMAGE flavor=$FLAVOR"
QUIET_NOTE=""
wait_for_quiet
log "host: $QUIET_NOTE; load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cpus"
machine_header
watch_start

q() { printf '%q' "$1"; }
export PROJECT_LABEL=$LABEL
export PROJECT_UP="$(q "$NOVABOX") server create --image $(q "$IMAGE") --flavor $(q "$FLAVOR") --network $(q "$NETWORK") --wait {name}"
export PROJECT_DOWN="$(q "$NOVABOX") server delete --force {name}"
unset PROJECT_RUN PROJECT_CLI PROJECT_SNAPSHOT PROJECT_CLEANUP

# run_anchor TAG SECONDS SCRIPT [ENV=V...]: result lines to stdout, progress to stderr and $W/TAG.err
run_anchor() {
  local tag=$1 t=$2 s=$3; shift 3
  log "---- $s ($*)"
  # tee ignores Ctrl-C, so that the anchor script can still log its own cleanup
  # (the wrapper writes its pid, which the anchor script keeps through exec: its state
  # dir is /run/anchors/anc-<tag>-<pid>, removed by cleanup() if it is left over)
  bg_run "$t" bash -c 'echo $$ >"$0"; exec "$@"' "$W/$tag.pid" env "$@" "$ANCHORS/$s" \
    >"$W/$tag.out" 2> >(trap '' INT TERM HUP; exec tee "$W/$tag.err" >&2)
  sleep 0.2   # let tee drain
  cat "$W/$tag.out"
  [ "$RC" = 0 ] || { log "WARNING: $s exited with status $RC"; echo "anchor_run $LABEL script=$s status=failed rc=$RC"; }
}

# ---- 1. full cycle -------------------------------------------------------------------
phase_cycle() {
  local st a b
  run_anchor cycle "$CYCLE_TIMEOUT" full-cycle.sh KEEP_STATE=1
  st=/run/anchors/anc-fc-$(cat "$W/cycle.pid" 2>/dev/null)
  if [ -n "$st" ] && [ -f "$st/fc.project.run.ms" ]; then
    for b in crun runc lxc; do
      [ -f "$st/fc.$b.run.ms" ] || continue
      echo "cycle_up_ratio $LABEL/$b $(paired_ratio "$st/fc.project.run.ms" "$st/fc.$b.run.ms")"
      echo "cycle_down_ratio $LABEL/$b $(paired_ratio "$st/fc.project.stop.ms" "$st/fc.$b.stop.ms")"
    done
    a=$(grep -c fail "$st/fc.project.total.ms")
    [ "$a" = 0 ] || echo "cycle_failures $LABEL n=$a"
    cp "$st"/fc.*.ms "$W/" 2>/dev/null
  fi
  rm -rf "$st"
  rmdir /run/anchors 2>/dev/null
  check_phase cycle
}

# ---- 2. density, one server at a time (the anchors' method) ---------------------------
phase_density() {
  run_anchor density "$DENSITY_TIMEOUT" density.sh ANCHOR_DENSITY_N="$DENSITY_N"
  check_phase density
}

div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", a / b; else printf "-" }'; }

# ---- 3. novabox's batch path: one create --min N --max N, one delete of all -------------
phase_batch() {
  local n=$BATCH_N pre=nbb-$$ t0 t1 u0 k0 u1 k1 u2 k2 ids active errs other p c mrss mpss mn irss ipss in_ arss apss an foreign
  log "---- batch: server create --min $n --max $n, memory, server delete --force of all"
  settle_mem "$SETTLE"
  pid_list >"$W/b.pids.before"
  u0=$(used_kb); k0=$(kernel_kb)
  # one untimed create+delete to bring the binaries back into the page cache after the drop
  { NB_TIMEOUT=120 nb server create --image "$IMAGE" --flavor "$FLAVOR" --network "$NETWORK" --wait "$pre-warm" &&
    NB_TIMEOUT=120 nb server delete --force "$pre-warm"; } >>"$W/batch.log" 2>&1

  t0=$EPOCHREALTIME
  bg_run "$CLI_TIMEOUT" "$NOVABOX" server create --image "$IMAGE" --flavor "$FLAVOR" --network "$NETWORK" --min "$n" --max "$n" --quiet "$pre" \
    </dev/null >"$W/b.create.out" 2>"$W/b.create.err"
  t1=$EPOCHREALTIME
  elapsed_ms "$t0" "$t1"; local create_ms=$ELAPSED_MS create_rc=$RC
  if [ "$create_rc" != 0 ]; then
    log "WARNING: server create --min $n --max $n exited with status $create_rc; its stderr:"
    tail -n 20 "$W/b.create.err" | sed 's/^/#   /' >&2
  fi
  settle_mem "$SETTLE"
  u1=$(used_kb); k1=$(kernel_kb)
  pid_list >"$W/b.pids.after"
  NB_TIMEOUT=300 nb server list -f value -c ID -c Status >"$W/b.list" 2>>"$W/batch.log"
  active=$(awk '$2=="ACTIVE"' "$W/b.list" | grep -c .)
  errs=$(awk '$2=="ERROR"' "$W/b.list" | grep -c .)
  other=$(awk '$2!="ACTIVE" && $2!="ERROR"' "$W/b.list" | grep -c .)
  # which of the processes that appeared are ours: monitors tagged <parent>/<id>, and the
  # processes inside the servers' cgroups (the inits); anything else is foreign
  comm -13 <(sort "$W/b.pids.before") <(sort "$W/b.pids.after") >"$W/b.pids.appeared"
  our_monitors | sort >"$W/b.mon.all"
  : >"$W/b.pids.mon"; : >"$W/b.pids.init"; : >"$W/b.pids.srv"; foreign=0
  while read -r p; do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    if grep -qx "$p" "$W/b.mon.all"; then echo "$p" >>"$W/b.pids.mon"
    elif in_parent_cgroup "$p"; then
      read -r c 2>/dev/null <"/proc/$p/comm"
      if [[ $c == *novabox-init ]]; then echo "$p" >>"$W/b.pids.init"; else echo "$p" >>"$W/b.pids.srv"; fi
    else foreign=$((foreign + 1)); fi
  done <"$W/b.pids.appeared"
  cat "$W/b.pids.mon" "$W/b.pids.init" "$W/b.pids.srv" >"$W/b.pids.all"
  read -r mrss mpss mn < <(rss_pss_kb "$W/b.pids.mon")
  read -r irss ipss in_ < <(rss_pss_kb "$W/b.pids.init")
  read -r arss apss an < <(rss_pss_kb "$W/b.pids.all")
  local started=$active; [ "$started" -gt 0 ] || started=1

  ids=$(awk '{print $1}' "$W/b.list")
  [ -n "$ids" ] || ids=$pre-1   # nothing listed: let delete say why
  t0=$EPOCHREALTIME
  # shellcheck disable=SC2086
  bg_run "$CLI_TIMEOUT" "$NOVABOX" server delete --force $ids </dev/null >"$W/b.delete.out" 2>"$W/b.delete.err"
  t1=$EPOCHREALTIME
  elapsed_ms "$t0" "$t1"; local delete_ms=$ELAPSED_MS delete_rc=$RC
  if [ "$delete_rc" != 0 ]; then
    log "WARNING: server delete --force of $(echo "$ids" | grep -c .) servers exited with status $delete_rc; its stderr:"
    tail -n 20 "$W/b.delete.err" | sed 's/^/#   /' >&2
  fi
  wait_clean 10
  local left=$LEFT remaining
  remaining=$(NB_TIMEOUT=120 nb server list -f value -c ID 2>/dev/null | grep -c .)
  settle_mem "$SETTLE"
  u2=$(used_kb); k2=$(kernel_kb)

  echo "batch_start_ms $LABEL n=$n rc=$create_rc active=$active error=$errs other=$other total=$create_ms" \
       "per_srv=$(awk -v t="$create_ms" -v n="$started" 'BEGIN{printf "%.2f", t/n}')"
  echo "batch_mem_kb $LABEL n=$n used_per_srv=$(( (u1 - u0) / started )) kernel_per_srv=$(( (k1 - k0) / started ))" \
       "rss_per_srv=$((arss / started)) pss_per_srv=$((apss / started)) procs_per_srv=$(awk -v a="$an" -v n="$started" 'BEGIN{printf "%.2f", a/n}')" \
       "monitor_rss=$(div "$mrss" "$mn") monitor_pss=$(div "$mpss" "$mn") monitors=$mn" \
       "init_rss=$(div "$irss" "$in_") init_pss=$(div "$ipss" "$in_") inits=$in_ other_srv_procs=$(grep -c . "$W/b.pids.srv")" \
       "leaked_used_kb=$((u2 - u0)) leaked_kernel_kb=$((k2 - k0)) foreign_procs=$foreign"
  echo "batch_stop_ms $LABEL n=$n rc=$delete_rc total=$delete_ms" \
       "per_srv=$(awk -v t="$delete_ms" -v n="$(echo "$ids" | grep -c .)" 'BEGIN{ if (n) printf "%.2f", t/n; else print "-" }') servers_left=$remaining"
  echo "leftover $LABEL phase=batch $left servers_in_db=$remaining"
  [ "$left" = "monitors=0 inits=0 cgroup_procs=0 cgroup_dirs=0 server_dirs=0" ] && [ "$remaining" = 0 ] || {
    log "WARNING: the batch left something behind ($left, $remaining in the db); removing it"; purge_servers; }
}

for ph in $PHASES; do
  case $ph in
    cycle) phase_cycle ;;
    density) phase_density ;;
    batch) phase_batch ;;
    *) die "unknown phase $ph" ;;
  esac
done
kill "$WATCH_PID" 2>/dev/null; wait "$WATCH_PID" 2>/dev/null; WATCH_PID=""
echo "host_busy $LABEL $(watch_report) note=\"$QUIET_NOTE\""
log "uptime at the end:$(uptime)"
