#!/bin/bash
# bench/api.sh - `novabox serve` under plain HTTP clients, beside the cold-CLI crun cycle.
#
#   1. anchor  ../shared/bench/anchors/full-cycle.sh with ANCHOR_CANDIDATES=crun: the cold
#              `crun run -d` (sleep 100000) up time, then kill + delete, one at a time
#   2. latency a warm serve; one client: POST /servers (busybox, c1.nano), then
#              GET /servers/{id} every POLL_MS (1) until ACTIVE, then DELETE: LAT_N rounds,
#              without a network (as the anchors' containers) and on the bridge network;
#              also the server-recorded time (launched_at - POST sent), free of polling
#   3. load    N (200) creates by CLIENTS (8) concurrent clients, each create followed by
#              polling until ACTIVE; servers/second over the whole batch; then all deleted
#              (both network modes)
#   Targets (issue 6): create -> ACTIVE <= 15 ms median, >= 60 servers/s.
#
# Run as root:  bench/api.sh            N=200 CLIENTS=8 LAT_N=40 ANCHOR_ROUNDS=30
# Everything runs under a private state root (/run/novabox-bench-api.XXXXXX) and cgroup
# parent (novabox-bench-api-<pid>); serve listens on 127.0.0.1 on a free port. Every server
# made is deleted by the client; the exit trap stops serve, force-deletes anything left,
# removes the root, and reports "leftover". Bounded: at most 1000 servers, timeouts on
# every step.
#
# stdout: "<metric> <label> key=value ..." lines, then a summary table; stderr: progress.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
[ -x "$ANCHORS/full-cycle.sh" ] || bdie "no $ANCHORS/full-cycle.sh (set SHARED_DIR)"
command -v jq >/dev/null || bdie "missing jq"
command -v crun >/dev/null || bdie "missing crun"

N=${N:-200}
CLIENTS=${CLIENTS:-8}
LAT_N=${LAT_N:-40}
ROUNDS=${ANCHOR_ROUNDS:-30}
[ "$N" -le 1000 ] || bdie "N is at most 1000"

PARENT=novabox-bench-api-$$
SERVE_PID=""
anchor_run_setup api
export NOVABOX_CGROUP_PARENT=$PARENT
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

api_cleanup() {
  local rc=$? ids left=0
  trap - EXIT INT TERM HUP
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"; for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVE_PID" 2>/dev/null
  fi
  if [ -n "$NB_ROOT" ] && [ -f "$NB_ROOT/novabox.db" ]; then
    ids=$(timeout 60 "$NOVABOX" server list --all-projects -f value -c ID 2>/dev/null </dev/null)
    left=$(echo -n "$ids" | grep -c .)
    [ -n "$ids" ] && echo "$ids" | xargs -r -n 100 timeout -k 10 300 "$NOVABOX" server delete --force >/dev/null 2>&1 </dev/null
    echo "leftover servers_deleted_by_trap=$left"
  fi
  for d in /sys/fs/cgroup/*/"$PARENT" /sys/fs/cgroup/"$PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  exit_code=$rc
  ( exit $exit_code ); anchor_run_cleanup
}
trap api_cleanup EXIT

# ---- 1. the crun anchor ----------------------------------------------------------
blog "anchor: full-cycle.sh, crun only, rounds=$ROUNDS"
busy_watch_start "$TMP/busy"
ANCHOR_CANDIDATES=crun ANCHOR_ROUNDS=$ROUNDS timeout -k 30 900 "$ANCHORS/full-cycle.sh" >"$TMP/anchor.out" || bdie "full-cycle.sh failed"
grep -E '^cycle_(up|total)_ms crun' "$TMP/anchor.out"
CRUN_UP=$(sed -n 's/^cycle_up_ms crun .*median=\([^ ]*\).*/\1/p' "$TMP/anchor.out")

# ---- 2./3. serve -------------------------------------------------------------------
NOVABOX_ADMIN_PASSWORD=$PASSWORD "$NOVABOX" serve --listen 127.0.0.1:0 --no-access-log >"$TMP/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
for _ in $(seq 100); do grep -q 'listening on' "$TMP/serve.log" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$TMP/serve.log" | head -1)
[ -n "$URL" ] || { cat "$TMP/serve.log" >&2; bdie "serve did not start"; }
blog "serve at $URL (pid $SERVE_PID)"

cl() { local mode=$1; shift; timeout -k 10 600 node "$HERE/api-client.mjs" "$mode" "$URL" admin "$PASSWORD" "$@"; }
cl latency 5 >/dev/null || bdie "warm-up failed"                  # warm: code paths, image, caches
cl latency "$LAT_N" | tee "$TMP/lat.out" || bdie "latency run failed"
NETWORKS=auto cl latency 5 >/dev/null || bdie "warm-up (bridge) failed"
NETWORKS=auto cl latency "$LAT_N" | tee "$TMP/lat-br.out" || bdie "latency run (bridge) failed"
cl throughput "$N" "$CLIENTS" | tee "$TMP/tp.out" || bdie "throughput run failed"
NETWORKS=auto cl throughput "$N" "$CLIENTS" | tee "$TMP/tp-br.out" || bdie "throughput run (bridge) failed"
busy_watch_stop

med() { sed -n "s/^$1 .*median=\([^ ]*\).*/\1/p" "$2"; }
LAT=$(med api_create_active_ms "$TMP/lat.out")
REC=$(med api_create_recorded_active_ms "$TMP/lat.out")
LAT_BR=$(med api_create_active_ms "$TMP/lat-br.out")
REC_BR=$(med api_create_recorded_active_ms "$TMP/lat-br.out")
RATE=$(sed -n 's/^api_throughput .*servers_per_s=\([^ ]*\).*/\1/p' "$TMP/tp.out")
RATE_BR=$(sed -n 's/^api_throughput .*servers_per_s=\([^ ]*\).*/\1/p' "$TMP/tp-br.out")
echo
echo "# novabox serve vs cold crun ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(busy_note), during the run $(busy_watch_report))"
printf '%-56s %10s\n' "crun run -d (cold CLI, up), median ms" "$CRUN_UP"
printf '%-56s %10s\n' "serve create -> ACTIVE, no network: polled (1 ms), median ms" "$LAT"
printf '%-56s %10s\n' "serve create -> ACTIVE, no network: recorded, median ms" "$REC"
printf '%-56s %10s\n' "serve create -> ACTIVE polled / crun up" "$(awk -v a="$LAT" -v b="$CRUN_UP" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "?" }')"
printf '%-56s %10s\n' "serve create -> ACTIVE, bridge: polled / recorded, ms" "$LAT_BR / $REC_BR"
printf '%-56s %10s\n' "serve servers/s ($N creates, $CLIENTS clients), no network" "$RATE"
printf '%-56s %10s\n' "serve servers/s ($N creates, $CLIENTS clients), bridge" "$RATE_BR"
printf '%-56s %10s\n' "targets" "<=15 ms, >=60/s"
