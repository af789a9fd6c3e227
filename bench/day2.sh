#!/bin/bash
# bench/day2.sh - the speed figures of issue 20 ("day two on one host"), on N servers:
#
#   1. stats   `server stats --no-stream` over N running servers, cold CLI, ROUNDS times
#              (target: under 200 ms)
#   2. follow  how long a line the server writes takes to show in `console log show
#              --follow` (bench/follow-latency.mjs: one follower, LINES lines written to
#              the server's own stdout; target: within 50 ms)
#   3. boot    the boot unit's command after a simulated host reboot, REBOOTS times: every
#              monitor and server process of the N servers (all `--restart always`) killed,
#              the recorded boot id changed (as test/integration/restart.test.ts does),
#              with NETWORK=novabox the private bridge and its nftables tables deleted,
#              then `autostart run` (its default --parallel, as the unit runs it) timed
#              until it exits with all N ACTIVE (target: under 2 s for N=100);
#              DROP_CACHES=1 drops the page cache first (a real boot starts cold)
#
# Run as root from anywhere:  bench/day2.sh          N=100 ROUNDS=20 LINES=30 REBOOTS=3
# Knobs: PHASES ("stats follow boot"), N, ROUNDS, LINES, REBOOTS, NETWORK (none; "novabox" adds the bridge and a veth
# per server), PARALLEL (the unit's --parallel; default: autostart run's own), IMAGE
# (busybox), FLAVOR (c1.nano), DROP_CACHES, BENCH_STATE (tmpfs|disk, see README), WAIT_QUIET.
#
# A private NOVABOX_ROOT (/run/novabox-bench-day2.*) with its own bridge and subnet, and a
# private cgroup parent (novabox-bench-day2-<pid>); all of it removed at exit, also on
# Ctrl-C, and a final "leftover" line says whether anything of it remains.
# stdout: result lines "<metric> key=value ..."; stderr: progress lines starting with '#'.
set -o pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || bdie "run as root"
command -v jq >/dev/null || bdie "needs jq"
PHASES=${PHASES:-stats follow boot}
N=${N:-100}
ROUNDS=${ROUNDS:-20}
LINES=${LINES:-30}
REBOOTS=${REBOOTS:-3}
NETWORK=${NETWORK:-none}
IMAGE=${IMAGE:-busybox}
FLAVOR=${FLAVOR:-c1.nano}
PARENT=novabox-bench-day2-$$
export NOVABOX_CGROUP_PARENT=$PARENT
NB_ROOT=""
TMP=$(mktemp -d /run/novabox-bench-day2-out.XXXXXX)

nb() { timeout -k 10 "${NB_TIMEOUT:-120}" node "$NOVABOX" "$@" </dev/null; }
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }

# every monitor (novabox-monitor, argv[1] = <parent>/<id>) and cgroup process of ours
our_pids() {
  local p c a f
  for p in /proc/[0-9]*; do
    read -r c 2>/dev/null <"$p/comm" || continue
    [ "$c" = novabox-monitor ] || continue
    mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
    case ${a[1]:-} in "$PARENT"/*) echo "${p#/proc/}" ;; esac
  done
  for f in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
    [ -d "$f" ] && find "$f" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
}

cleanup() {
  local rc=$? ids p d i left
  trap '' INT TERM HUP
  trap - EXIT
  if [ -n "$NB_ROOT" ] && [ -f "$NB_ROOT/novabox.db" ]; then
    ids=$(nb server list -f value -c ID 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$ids" ] && NB_TIMEOUT=300 nb server delete --force $ids >/dev/null 2>&1
  fi
  for ((i = 0; i < 10; i++)); do
    left=$(our_pids | sort -u)
    [ -z "$left" ] && break
    for p in $left; do kill -KILL "$p" 2>/dev/null; done
    sleep 0.3
  done
  for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  left="procs=$(our_pids | sort -u | grep -c .) cgroup_dirs=$(ls -d /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT" 2>/dev/null | grep -c .)"
  [ -n "$NB_ROOT" ] && cleanup_root "$NB_ROOT"
  echo "leftover $left root_exists=$([ -n "$NB_ROOT" ] && [ -e "$NB_ROOT" ] && echo 1 || echo 0)"
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'blog interrupted; exit 130' INT TERM HUP

wait_quiet
new_root day2
BRIDGE=$(jq -r '.network.bridge' "$NB_ROOT/config.json")
blog "NOVABOX_ROOT=$NB_ROOT ($NB_ROOT_FS) cgroup parent $PARENT; N=$N network=$NETWORK; host: $(busy_note)"

blog "creating $N servers (--restart always)"
t0=$EPOCHREALTIME
NB_TIMEOUT=600 nb server create --image "$IMAGE" --flavor "$FLAVOR" --network "$NETWORK" --restart always \
  --min "$N" --max "$N" --quiet d2 >/dev/null 2>"$TMP/create.err" || { cat "$TMP/create.err" >&2; bdie "server create failed"; }
echo "create n=$N network=$NETWORK ms=$(ms_since "$t0")"
active=$(nb server list -f value -c Status | grep -c '^ACTIVE$')
[ "$active" = "$N" ] || bdie "$active of $N servers ACTIVE after create"

phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

# ---- 1. stats ---------------------------------------------------------------------
if phase stats; then
nb server stats --no-stream >/dev/null # warm the page cache once
: >"$TMP/stats"
for ((r = 0; r < ROUNDS; r++)); do
  t0=$EPOCHREALTIME
  rows=$(nb server stats --no-stream -f value -c ID | grep -c .)
  ms=$(ms_since "$t0")
  if [ "$rows" = "$N" ]; then echo "$ms" >>"$TMP/stats"; else echo fail >>"$TMP/stats"; blog "stats round $r: $rows rows"; fi
done
read -r med p90 < <(sample_stats "$TMP/stats")
echo "stats_no_stream n=$N rounds=$ROUNDS median_ms=$med p90_ms=$p90 max_ms=$(grep -v fail "$TMP/stats" | sort -g | tail -1) target_ms=200"
fi

# ---- 2. follow --------------------------------------------------------------------
if phase follow; then
pid=$(nb server show d2-1 -f json | jq -r '.pid // empty')
[ -n "$pid" ] || bdie "no pid for d2-1"
node "$HERE/follow-latency.mjs" "$NOVABOX" d2-1 "$pid" "$LINES" >"$TMP/follow" || bdie "follow-latency.mjs failed"
read -r med p90 < <(sample_stats "$TMP/follow")
echo "follow_line n=$LINES median_ms=$med p90_ms=$p90 max_ms=$(grep -v fail "$TMP/follow" | sort -g | tail -1) missed=$(grep -c fail "$TMP/follow") target_ms=50"
fi

# ---- 3. boot ----------------------------------------------------------------------
if phase boot; then
: >"$TMP/boot"
for ((r = 0; r < REBOOTS; r++)); do
  node -e '
    const Database = require(process.argv[1]);
    const db = new Database(process.argv[2]);
    const rt = db.prepare("SELECT monitor_pid AS m, init_pid AS i FROM server_runtime").all();
    for (const { m } of rt) try { process.kill(m, "SIGKILL"); } catch {}
    for (const { i } of rt) try { process.kill(i, "SIGKILL"); } catch {}
    db.prepare("UPDATE server_runtime SET boot_id = ?").run("a-boot-before-this-one");
    db.close();' "$REPO/node_modules/better-sqlite3" "$NB_ROOT/novabox.db" || bdie "the simulated reboot failed"
  # the killed processes are gone (their cgroups empty) before the clock starts
  for ((i = 0; i < 100; i++)); do [ -z "$(our_pids)" ] && break; sleep 0.1; done
  # a reboot takes the bridge and its nftables tables too (the veths went with the servers)
  if [ "$NETWORK" = novabox ]; then
    ip link del "$BRIDGE" 2>/dev/null
    nft delete table ip "novabox_$BRIDGE" 2>/dev/null
    nft delete table ip "novabox_${BRIDGE}_ports" 2>/dev/null
  fi
  [ -n "${DROP_CACHES:-}" ] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
  t0=$EPOCHREALTIME
  started=$(NB_TIMEOUT=300 nb autostart run ${PARALLEL:+--parallel "$PARALLEL"} 2>"$TMP/boot.err" | grep -c '^started ')
  ms=$(ms_since "$t0")
  active=$(nb server list -f value -c Status | grep -c '^ACTIVE$')
  blog "reboot $r: started=$started active=$active in $ms ms$( [ -s "$TMP/boot.err" ] && printf ', stderr: %s' "$(head -3 "$TMP/boot.err")")"
  if [ "$started" = "$N" ] && [ "$active" = "$N" ]; then echo "$ms" >>"$TMP/boot"; else echo fail >>"$TMP/boot"; fi
done
read -r med p90 < <(sample_stats "$TMP/boot")
echo "autostart_after_reboot n=$N parallel=${PARALLEL:-default} drop_caches=${DROP_CACHES:-0} rounds=$REBOOTS median_ms=$med max_ms=$(grep -v fail "$TMP/boot" | sort -g | tail -1) failed=$(grep -c fail "$TMP/boot") target_ms=2000"
fi
blog "host after: $(busy_note)"
