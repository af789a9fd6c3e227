#!/bin/bash
# bench/monitor-rss.sh - memory held per running container: the novabox-monitor
# process (target: under 1 MB RSS each) and, separately, the waiting CLI (node).
#
#   N=20 bench/monitor-rss.sh        (as root)
#
# Starts N foreground CLIs in the background,
#   bin/novabox run --rm --name rss-$i busybox sleep $SLEEP_SECS &
# with a private NOVABOX_ROOT (/run/novabox-bench-rss.XXXXXX), waits (bounded) until
# all N containers are running and N novabox-monitor processes (the pids recorded in
# their state.json, checked by name and start time) exist, then reads
# /proc/<pid>/smaps_rollup of every monitor, CLI and container init.
# Stopping: `sleep` as pid 1 ignores SIGTERM, so the script SIGKILLs each container's
# init (state.json initPid, start time checked); the monitors report the exit, the
# CLIs remove their containers and exit. It then checks that nothing is left: no
# monitor of ours, no novabox/<id> cgroup of ours in any hierarchy, an empty
# $NOVABOX_ROOT/containers; and removes the private root. Exit status 1 if anything
# was left (and cleaned up by force).
#
# Env: N (20), SLEEP_SECS (60), WAIT_TIMEOUT (60 s, for each wait), WAIT_QUIET (0).
# Output (stdout): result lines
#   monitor_mem_kb novabox-monitor n= rss_avg= rss_min= rss_max= pss_avg= uss_avg=
#   monitor_mem_kb cli-node n= ...   monitor_mem_kb container-init n= ...
# then a short table and the verdict on the 1 MB target.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
[ -x "$NOVABOX" ] || bdie "no $NOVABOX"
command -v jq >/dev/null || bdie "missing jq"

N=${N:-20}
SLEEP_SECS=${SLEEP_SECS:-60}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-60}
CLI_PIDS=()
NB_ROOT=""
TMP=$(mktemp -d /run/novabox-bench-rss-out.XXXXXX) || bdie "cannot create a temp dir under /run"
OUT=$TMP/cli.out   # CLI output
cleanup() {
  local rc=$? p i
  trap - EXIT INT TERM HUP
  if [ -n "${NB_ROOT:-}" ]; then
    kill_inits
    for ((i = 0; i < 50; i++)); do alive_clis >/dev/null || break; sleep 0.2; done
    for p in "${CLI_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 25; i++)); do alive_clis >/dev/null || break; sleep 0.2; done
    for p in "${CLI_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    cleanup_root "$NB_ROOT"
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'blog interrupted; exit 130' INT TERM HUP

# fields of every state.json: "id initPid initStart monitorPid monitorStart status"
states() {
  local f
  for f in "$NB_ROOT"/containers/*/state.json; do
    [ -f "$f" ] || continue
    jq -r '"\(.id) \(.initPid // "-") \(.initStart // "-") \(.monitorPid // "-") \(.monitorStart // "-") \(.status)"' "$f" 2>/dev/null
  done
}
alive_clis() { local p n=0; for p in "${CLI_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo "$n"; [ "$n" -gt 0 ]; }
kill_inits() {
  local id ip is mp ms st
  while read -r id ip is mp ms st; do
    [ "$ip" != - ] && [ "$(proc_start "$ip")" = "$is" ] && kill -KILL "$ip" 2>/dev/null
  done < <(states)
}
# monitors of ours that are alive: "pid" lines
our_monitors() {
  local id ip is mp ms st
  while read -r id ip is mp ms st; do
    [ "$mp" != - ] && [ "$(proc_start "$mp")" = "$ms" ] && [ "$(cat "/proc/$mp/comm" 2>/dev/null)" = novabox-monitor ] && echo "$mp"
  done < <(states)
}
# mem PIDFILE LABEL -> result line (kB): Rss, Pss and USS (Private_Clean+Private_Dirty)
mem() {
  local p k v r s u
  while read -r p; do
    r=''; s=''; u=0
    while read -r k v _; do
      case $k in Rss:) r=$v ;; Pss:) s=$v ;; Private_Clean:|Private_Dirty:) u=$((u + v)) ;; esac
    done <"/proc/$p/smaps_rollup" 2>/dev/null
    [ -n "$r" ] && echo "$r ${s:-0} $u"
  done <"$1" | awk -v l="$2" '
    { n++; r+=$1; s+=$2; u+=$3; if (n==1 || $1<mn) mn=$1; if ($1>mx) mx=$1 }
    END { if (!n) { print "monitor_mem_kb " l " n=0"; exit }
          printf "monitor_mem_kb %s n=%d rss_avg=%.0f rss_min=%d rss_max=%d pss_avg=%.0f uss_avg=%.0f\n", l, n, r/n, mn, mx, s/n, u/n }'
}
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

wait_quiet
new_root rss
blog "NOVABOX_ROOT=$NB_ROOT N=$N; novabox-monitor processes on the host before: $(pgrep -xc novabox-monitor)"

# one untimed container first, so the busybox image is unpacked once, not N times at once
timeout "$WAIT_TIMEOUT" "$NOVABOX" run --rm --network none --name rss-warm busybox true </dev/null >"$OUT" 2>&1 ||
  { sed 's/^/#   /' "$OUT" >&2; bdie "novabox run --rm busybox true failed"; }

for ((i = 1; i <= N; i++)); do
  "$NOVABOX" run --rm --network none --name "rss-$i" busybox sleep "$SLEEP_SECS" </dev/null >>"$OUT" 2>&1 &
  CLI_PIDS+=($!)
done

# wait until N containers are running with a live novabox-monitor each
deadline=$((SECONDS + WAIT_TIMEOUT))
while :; do
  nmon=$(our_monitors | wc -l)
  nrun=$(states | awk '$6=="running" && $2!="-"' | wc -l)
  [ "$nmon" -ge "$N" ] && [ "$nrun" -ge "$N" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    blog "timeout: $nrun running, $nmon monitors after ${WAIT_TIMEOUT}s; CLI output:"; tail -n 5 "$OUT" | sed 's/^/#   /' >&2
    exit 1
  fi
  if ! alive_clis >/dev/null; then blog "all CLIs exited early:"; tail -n 5 "$OUT" | sed 's/^/#   /' >&2; exit 1; fi
  sleep 0.2
done
blog "$N containers running; novabox-monitor processes on the host now: $(pgrep -xc novabox-monitor)"
sleep 1   # let the CLIs settle into their wait

our_monitors >"$TMP/mon"
printf '%s\n' "${CLI_PIDS[@]}" >"$TMP/cli"
states | awk '$2!="-" {print $2}' >"$TMP/init"
IDS=$(states | awk '{print $1}')
L_MON=$(mem "$TMP/mon" novabox-monitor)
L_CLI=$(mem "$TMP/cli" cli-node)
L_INIT=$(mem "$TMP/init" container-init)
printf '%s\n' "$L_MON" "$L_CLI" "$L_INIT"

# ---- stop: SIGKILL the inits, the CLIs then clean up and exit ----------------------
t0=$EPOCHREALTIME
kill_inits
deadline=$((SECONDS + WAIT_TIMEOUT))
while alive_clis >/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
left_cli=$(alive_clis)
t1=$EPOCHREALTIME
stop_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

# ---- verify nothing is left ---------------------------------------------------------
left_mon=$(our_monitors | wc -l)
left_ctr=$(find "$NB_ROOT/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
left_cg=0
for id in $IDS; do
  for d in /sys/fs/cgroup/*/novabox/"$id" /sys/fs/cgroup/novabox/"$id"; do [ -d "$d" ] && left_cg=$((left_cg + 1)); done
done
leftover="none"
if [ "$left_cli" != 0 ] || [ "$left_mon" != 0 ] || [ "$left_ctr" != 0 ] || [ "$left_cg" != 0 ]; then
  leftover="clis=$left_cli monitors=$left_mon container_dirs=$left_ctr cgroup_dirs=$left_cg (cleaned up by force)"
fi
echo "monitor_stop novabox n=$N seconds=$stop_s leftovers=${leftover// /_}"
[ -s "$OUT" ] && { blog "CLI output (last lines):"; tail -n 3 "$OUT" | sed 's/^/#   /' >&2; }

echo
echo "# memory per running container, kB ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), N=$N, $(busy_note))"
printf '%-18s %8s %8s %8s %8s %8s\n' process rss_avg rss_max pss_avg uss_avg n
for l in "$L_MON" "$L_CLI" "$L_INIT"; do
  printf '%-18s %8s %8s %8s %8s %8s\n' "$(cut -d' ' -f2 <<<"$l")" "$(kv "$l" rss_avg)" "$(kv "$l" rss_max)" \
    "$(kv "$l" pss_avg)" "$(kv "$l" uss_avg)" "$(kv "$l" n)"
done
mx=$(kv "$L_MON" rss_max)
if [ -n "$mx" ] && [ "$mx" -lt 1024 ]; then echo "target (< 1 MB = 1024 kB RSS per novabox-monitor): met, max $mx kB"
else echo "target (< 1 MB = 1024 kB RSS per novabox-monitor): NOT met, max ${mx:-?} kB"; fi
echo "stop: SIGKILL to $N inits -> all CLIs exited in ${stop_s}s; leftovers: $leftover"
[ "$leftover" = none ]
