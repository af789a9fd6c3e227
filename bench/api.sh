#!/bin/bash
# bench/api.sh - `novabox serve` under plain HTTP clients, beside the cold-CLI crun cycle.
#
#   1. paired  BLOCKS (5) blocks, each: the anchor ../shared/bench/anchors/full-cycle.sh
#              with ANCHOR_CANDIDATES=crun (the cold `crun run -d` (sleep 100000) up time,
#              then kill + delete, one at a time; ANCHOR_ROUNDS/BLOCKS rounds), then a warm
#              serve's latency (LAT_N/BLOCKS rounds, no network): both sides in the same
#              time window, block by block; the ratio is the median of the blocks' ratios.
#              What each side pays: crun a cold CLI (process start, its own state, the OCI
#              bundle made beforehand by the anchor, no network, no image); serve a warm
#              process: HTTP, the token check, the database record, the container start
#              (image layers mounted, no network), and the client's 1 ms polling.
#   2. latency the same serve, one client: POST /servers (busybox, c1.nano), then
#              GET /servers/{id} every POLL_MS (1) until ACTIVE, then DELETE: LAT_N rounds
#              on the bridge network; also the server-recorded time (launched_at - POST
#              sent), free of polling
#   3. load    N (200) creates by CLIENTS (8) concurrent clients, each create followed by
#              polling until ACTIVE; servers/second over the whole batch; then all deleted
#              (both network modes)
#   Targets (issue 6): create -> ACTIVE <= 15 ms median, >= 60 servers/s.
#
# serve runs with its defaults (an access-log line per request, to its log file);
# SERVE_ARGS=--no-access-log measures without it (the table says which).
# Run as root:  bench/api.sh            N=200 CLIENTS=8 LAT_N=40 ANCHOR_ROUNDS=30 BLOCKS=5
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
BLOCKS=${BLOCKS:-5}
SERVE_ARGS=${SERVE_ARGS:-}
[ "$N" -le 1000 ] || bdie "N is at most 1000"
[ "$BLOCKS" -ge 1 ] && [ "$ROUNDS" -ge "$BLOCKS" ] && [ "$LAT_N" -ge "$BLOCKS" ] || bdie "BLOCKS must be at most ANCHOR_ROUNDS and LAT_N"

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

# ---- serve, warm --------------------------------------------------------------------
busy_watch_start "$TMP/busy"
# shellcheck disable=SC2086  # SERVE_ARGS: words
NOVABOX_ADMIN_PASSWORD=$PASSWORD "$NOVABOX" serve --listen 127.0.0.1:0 $SERVE_ARGS >"$TMP/serve.log" 2>&1 </dev/null &
SERVE_PID=$!
for _ in $(seq 100); do grep -q 'listening on' "$TMP/serve.log" && break; sleep 0.1; done
URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$TMP/serve.log" | head -1)
[ -n "$URL" ] || { cat "$TMP/serve.log" >&2; bdie "serve did not start"; }
blog "serve at $URL (pid $SERVE_PID) ${SERVE_ARGS:-with its defaults}"

cl() { local mode=$1; shift; timeout -k 10 600 node "$HERE/api-client.mjs" "$mode" "$URL" admin "$PASSWORD" "$@"; }
cl latency 5 >/dev/null || bdie "warm-up failed"                  # warm: code paths, image, caches

# ---- 1. crun and serve in the same blocks ---------------------------------------------
med() { sed -n "s/^$1 .*median=\([^ ]*\).*/\1/p" "$2"; }
: >"$TMP/blocks"
for b in $(seq "$BLOCKS"); do
  blog "block $b/$BLOCKS: crun anchor ($((ROUNDS / BLOCKS)) rounds), serve ($((LAT_N / BLOCKS)) rounds)"
  ANCHOR_CANDIDATES=crun ANCHOR_ROUNDS=$((ROUNDS / BLOCKS)) timeout -k 30 900 "$ANCHORS/full-cycle.sh" >"$TMP/anchor.$b.out" || bdie "full-cycle.sh failed"
  cl latency $((LAT_N / BLOCKS)) >"$TMP/lat.$b.out" || bdie "latency run failed"
  c=$(sed -n 's/^cycle_up_ms crun .*median=\([^ ]*\).*/\1/p' "$TMP/anchor.$b.out")
  s=$(med api_create_active_ms "$TMP/lat.$b.out")
  r=$(med api_create_recorded_active_ms "$TMP/lat.$b.out")
  echo "$c $s $r" >>"$TMP/blocks"
  echo "api_block $b crun_up_median=$c serve_polled_median=$s serve_recorded_median=$r ratio=$(awk -v a="$s" -v b="$c" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "?" }')"
done
# medians over the blocks (of the blocks' medians), and of the blocks' paired ratios
colmed() { awk -v k="$1" '{ print $k }' "$TMP/blocks" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
CRUN_UP=$(colmed 1)
LAT=$(colmed 2)
REC=$(colmed 3)
awk '{ if ($1 > 0) printf "%.3f\n", $2 / $1 }' "$TMP/blocks" | sort -g >"$TMP/ratios"
RATIO=$(awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }' "$TMP/ratios")
RATIO_RANGE="$(head -1 "$TMP/ratios")-$(tail -1 "$TMP/ratios")"

# ---- 2./3. serve: bridge latency, throughput --------------------------------------------
NETWORKS=auto cl latency 5 >/dev/null || bdie "warm-up (bridge) failed"
NETWORKS=auto cl latency "$LAT_N" | tee "$TMP/lat-br.out" || bdie "latency run (bridge) failed"
cl throughput "$N" "$CLIENTS" | tee "$TMP/tp.out" || bdie "throughput run failed"
NETWORKS=auto cl throughput "$N" "$CLIENTS" | tee "$TMP/tp-br.out" || bdie "throughput run (bridge) failed"
busy_watch_stop

LAT_BR=$(med api_create_active_ms "$TMP/lat-br.out")
REC_BR=$(med api_create_recorded_active_ms "$TMP/lat-br.out")
RATE=$(sed -n 's/^api_throughput .*servers_per_s=\([^ ]*\).*/\1/p' "$TMP/tp.out")
RATE_BR=$(sed -n 's/^api_throughput .*servers_per_s=\([^ ]*\).*/\1/p' "$TMP/tp-br.out")
echo
echo "# novabox serve vs cold crun ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(busy_note), during the run $(busy_watch_report))"
echo "# serve: ${SERVE_ARGS:-its defaults (access log on)}; crun and serve measured in the same $BLOCKS blocks; state root: ${NB_ROOT_FS:-?} (BENCH_STATE=${BENCH_STATE:-tmpfs})"
printf '%-56s %10s\n' "crun run -d (cold CLI, up), median ms" "$CRUN_UP"
printf '%-56s %10s\n' "serve create -> ACTIVE, no network: polled (1 ms), median ms" "$LAT"
printf '%-56s %10s\n' "serve create -> ACTIVE, no network: recorded, median ms" "$REC"
printf '%-56s %10s\n' "serve polled / crun up, median of $BLOCKS blocks (range)" "$RATIO ($RATIO_RANGE)"
printf '%-56s %10s\n' "serve create -> ACTIVE, bridge: polled / recorded, ms" "$LAT_BR / $REC_BR"
printf '%-56s %10s\n' "serve servers/s ($N creates, $CLIENTS clients), no network" "$RATE"
printf '%-56s %10s\n' "serve servers/s ($N creates, $CLIENTS clients), bridge" "$RATE_BR"
printf '%-56s %10s\n' "targets" "<=15 ms, >=60/s"
