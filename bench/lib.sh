# shellcheck shell=bash
# bench/lib.sh - helpers shared by the novabox benchmark scripts in this folder.
#
# Sourced by start-latency.sh, cpu-overhead.sh and monitor-rss.sh. Also runnable as
#   bash bench/lib.sh cleanup-root DIR      kill what is left in a private NOVABOX_ROOT,
#                                           remove its containers and cgroups, then DIR
#   bash bench/lib.sh prep-samefs ROOTFS    (cpu-overhead.sh, NOVABOX_CPU_MODE=samefs)
# so that the anchor scripts can call them from PROJECT_CLEANUP / PROJECT_RUN.
#
# Conventions: progress on stderr with a leading '#', results on stdout.

set -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(git -C "$BENCH_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$BENCH_DIR/.." && pwd))
SHARED_DIR=${SHARED_DIR:-$REPO/../shared}
ANCHORS=$SHARED_DIR/bench/anchors
NOVABOX=$REPO/bin/novabox
ANCHOR_DIR=${ANCHOR_DIR:-/var/tmp/anchors}
export ANCHOR_DIR

# Every node start would parse the CA bundle (+40 ms here): same environment for all.
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS

blog() { printf '# %s\n' "$*" >&2; }
bdie() { printf '# FATAL: %s\n' "$*" >&2; exit 1; }

# ---- host quietness -------------------------------------------------------------
# busy_note: one line on what else is running (qemu VMs of other sessions use a core).
busy_note() {
  local q
  q=$(pgrep -f '^qemu-system' 2>/dev/null | wc -l)
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg) qemu_procs=$q"
}
# wait_quiet: wait up to WAIT_QUIET seconds (default 0: only report) for no qemu-system.
wait_quiet() {
  local t=${WAIT_QUIET:-0} i=0
  while pgrep -f '^qemu-system' >/dev/null 2>&1; do
    if [ "$i" -ge "$t" ]; then blog "WARNING: a qemu-system process is running: the host is busy ($(busy_note))"; return 0; fi
    [ "$i" = 0 ] && blog "a qemu-system process is running; waiting up to ${t}s for it to finish"
    sleep 5; i=$((i + 5))
  done
  blog "host: $(busy_note)"
}

# busy_watch_start FILE / busy_watch_stop: sample once a second whether a qemu-system
# process runs; busy_watch_report -> "qemu_seen=K/N s" (K seconds busy of N sampled)
BUSY_PID=""
cpu_stat() { awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6 }' /proc/stat; }   # "total idle" jiffies
busy_watch_start() {
  BUSY_FILE=$1
  cpu_stat >"$BUSY_FILE.cpu0"
  ( while :; do if pgrep -f '^qemu-system' >/dev/null 2>&1; then printf 1; else printf 0; fi; sleep 1; done ) >"$BUSY_FILE" 2>/dev/null &
  BUSY_PID=$!
}
busy_watch_stop() {
  [ -n "$BUSY_PID" ] || return 0
  kill "$BUSY_PID" 2>/dev/null; wait "$BUSY_PID" 2>/dev/null; BUSY_PID=""
  cpu_stat >"$BUSY_FILE.cpu1"
}
# "qemu_seen=K/Ns host_cpu=P%": seconds with a qemu-system running, and the host's whole
# CPU use over the run (this benchmark alone keeps about one core of $(nproc) busy)
busy_watch_report() {
  local s b
  s=$(cat "$BUSY_FILE" 2>/dev/null); b=${s//0/}
  printf 'qemu_seen=%s/%ss host_cpu=%s' "${#b}" "${#s}" \
    "$(cat "$BUSY_FILE.cpu0" "$BUSY_FILE.cpu1" 2>/dev/null | awk 'NR==1{t=$1;i=$2} NR==2{ if ($1>t) printf "%.0f%%", 100*(1-($2-i)/($1-t)); else printf "?" }')"
}

# ---- anchor rootfs --------------------------------------------------------------
ROOTFS_BUILT=""
ensure_rootfs() {
  if [ -x "$ANCHOR_DIR/bundle/rootfs/bin/busybox" ] && [ -f "$ANCHOR_DIR/bundle/config.json" ] &&
     [ -f "$ANCHOR_DIR/lxc/config" ]; then
    return 0
  fi
  [ -e "$ANCHOR_DIR" ] || ROOTFS_BUILT=1
  blog "building the anchor rootfs in $ANCHOR_DIR"
  "$ANCHORS/build-rootfs.sh" "$ANCHOR_DIR" >&2 || bdie "build-rootfs.sh failed"
}
remove_built_rootfs() {
  if [ -n "$ROOTFS_BUILT" ] && [ -z "${KEEP_ROOTFS:-}" ]; then
    # never while something is mounted below it (an interrupted anchor run)
    if awk -v b="$ANCHOR_DIR" '$5==b || index($5, b"/")==1' /proc/self/mountinfo | grep -q .; then
      blog "not removing $ANCHOR_DIR: something is still mounted below it"
    else
      rm -rf "$ANCHOR_DIR"; blog "removed $ANCHOR_DIR (built by this run; KEEP_ROOTFS=1 keeps it)"
    fi
  fi
  ROOTFS_BUILT=""
}

# ---- private NOVABOX_ROOT ---------------------------------------------------------
# The novabox/ parent cgroups are shared with every other novabox on the host: remember
# which hierarchies had none, so that a parent this run created (and left empty) goes too.
CG_PARENTS_BEFORE=""
record_cg_parents() {
  local d
  CG_PARENTS_BEFORE=" "
  for d in /sys/fs/cgroup/*/novabox /sys/fs/cgroup/novabox; do [ -d "$d" ] && CG_PARENTS_BEFORE+="$d "; done
  export CG_PARENTS_BEFORE
}
# new_root TAG -> sets and exports NOVABOX_ROOT to a fresh private dir: under /run
# (BENCH_STATE=tmpfs, the default: a tmpfs on most hosts) or under /var/tmp
# (BENCH_STATE=disk: the disk filesystem, where users' /var/lib/novabox is as a rule).
# The tables print which filesystem it was (root_fs).
new_root() {
  record_cg_parents
  local parent
  case ${BENCH_STATE:-tmpfs} in tmpfs) parent=/run ;; disk) parent=/var/tmp ;; *) bdie "BENCH_STATE is tmpfs or disk" ;; esac
  mkdir -p "$parent"
  NB_ROOT=$(mktemp -d "$parent/novabox-bench-$1.XXXXXX") || bdie "cannot create a state dir under $parent"
  NB_ROOT_FS=$(root_fs "$NB_ROOT")
  export NB_ROOT_FS
  export NOVABOX_ROOT=$NB_ROOT NB_ROOT
  private_network "$NB_ROOT"
}

# root_fs DIR -> "tmpfs on /run", "ext4 on /" ...: the filesystem DIR is on
root_fs() { df --output=fstype,target "$1" 2>/dev/null | awk 'NR == 2 { print $1 " on " $2 }'; }

# private_network ROOT: a bridge and /16 of the root's own (config.json), so a benchmark
# never shares novabox0 with a real state root; cleanup_root removes both.
private_network() {
  local x used
  used=$(awk 'NR > 1 { print $2 }' /proc/net/route)
  for x in $(shuf -i 150-249); do
    # /proc/net/route is little-endian hex: 10.x.0.0 reads 0000XX0A; any route inside 10.x/16 ends in XX0A
    printf '%s\n' "$used" | grep -qi "$(printf '%02X0A$' "$x")" && continue
    printf '{"network": {"bridge": "nbb%s", "subnet": "10.%s.0.0/16"}}\n' "$(basename "$1" | tr -dc 'A-Za-z0-9' | tail -c 8)" "$x" >"$1/config.json"
    return 0
  done
  bdie "no free 10.x.0.0/16 for a private bridge"
}

# proc_start PID -> field 22 of /proc/PID/stat (start time), empty if gone
# anchor_run_setup TAG: what start-latency.sh and cpu-overhead.sh both need around one
# anchor script: $TMP, an EXIT/INT/TERM/HUP trap that removes the private novabox root
# ($NB_ROOT), the anchor's state dir (/run/anchors/anc-TAG-<pid>, pid in $TMP/apid, or
# $ASTATE) and a rootfs this run built; then waits for a quiet host, ensures the rootfs,
# and makes the private root.
anchor_run_setup() {
  BENCH_TAG=$1
  TMP=$(mktemp -d "/run/novabox-bench-$BENCH_TAG-out.XXXXXX")
  NB_ROOT=""
  ASTATE=""
  trap anchor_run_cleanup EXIT
  trap 'blog interrupted; exit 130' INT TERM HUP
  wait_quiet
  ensure_rootfs
  new_root "$BENCH_TAG"
}
anchor_run_cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  busy_watch_stop
  [ -n "$NB_ROOT" ] && cleanup_root "$NB_ROOT"
  # also when the anchor's PROJECT_CLEANUP (another process) removed the root first
  remove_new_cg_parents
  [ -z "$ASTATE" ] && [ -s "$TMP/apid" ] && ASTATE=/run/anchors/anc-$BENCH_TAG-$(cat "$TMP/apid")
  case $ASTATE in /run/anchors/anc-"$BENCH_TAG"-[0-9]*) rm -rf "$ASTATE"; rmdir /run/anchors 2>/dev/null ;; esac
  remove_built_rootfs
  rm -rf "$TMP"
  exit $rc
}

proc_start() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0; s=${s##*) }; set -- $s; echo "${20}"; }

# cleanup_root DIR: everything novabox left under a private root, then the root itself.
cleanup_root() {
  local root=$1 st id ip is mp ms d i left
  [ -n "$root" ] && [ -d "$root" ] || return 0
  case $root in /run/novabox-bench-*|/var/tmp/novabox-bench-*) ;; *) blog "refusing to clean $root"; return 1 ;; esac
  # 1. kill the inits (and monitors) still alive: pid checked against its start time
  for st in "$root"/containers/*/state.json; do
    [ -f "$st" ] || continue
    read -r ip is mp ms < <(jq -r '"\(.initPid // "") \(.initStart // "") \(.monitorPid // "") \(.monitorStart // "")"' "$st" 2>/dev/null)
    [ -n "$ip" ] && [ "$(proc_start "$ip")" = "$is" ] && kill -KILL "$ip" 2>/dev/null
  done
  # 2. give the CLIs up to 5 s to notice and remove their containers
  for ((i = 0; i < 25; i++)); do
    left=$(find "$root/containers" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  # 3. whatever is still there: monitors of dead CLIs, records of killed CLIs
  for st in "$root"/containers/*/state.json; do
    [ -f "$st" ] || continue
    read -r ip is mp ms < <(jq -r '"\(.initPid // "") \(.initStart // "") \(.monitorPid // "") \(.monitorStart // "")"' "$st" 2>/dev/null)
    [ -n "$mp" ] && [ "$(proc_start "$mp")" = "$ms" ] && kill -KILL "$mp" 2>/dev/null
  done
  if find "$root/containers" -mindepth 1 -maxdepth 1 2>/dev/null | grep -q .; then
    sleep 0.3
    # novabox's own garbage collection (ps looks, finds dead monitors, cleans up)
    NOVABOX_ROOT=$root timeout 20 node "$NOVABOX" ps -a >/dev/null 2>&1 </dev/null
    for d in "$root"/containers/*/; do
      [ -d "$d" ] || continue
      NOVABOX_ROOT=$root timeout 20 node "$NOVABOX" rm -f "$(basename "$d")" >/dev/null 2>&1 </dev/null
    done
  fi
  # 4. cgroups of this root's containers (ids = dir names), then parents we created
  for d in "$root"/containers/*/; do
    [ -d "$d" ] || continue
    id=$(basename "$d")
    for cg in /sys/fs/cgroup/*/novabox/"$id" /sys/fs/cgroup/novabox/"$id"; do
      [ -d "$cg" ] || continue
      while read -r p; do kill -KILL "$p" 2>/dev/null; done <"$cg/cgroup.procs"
      find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || { sleep 0.3; find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null; }
    done
  done
  for d in "$root"/containers/*/rootfs; do mountpoint -q "$d" 2>/dev/null && umount -l "$d"; done
  if [ -f "$root/config.json" ]; then
    local br
    br=$(jq -r '.network.bridge // empty' "$root/config.json" 2>/dev/null)
    case $br in nbb*) nft delete table ip "novabox_$br" 2>/dev/null; ip link del "$br" 2>/dev/null ;; esac
  fi
  rm -rf "$root"
  remove_new_cg_parents
  return 0
}

# The cgroup parents (novabox keeps them, as Docker keeps its own) that were not there
# when new_root recorded them: a benchmark leaves the host's cgroups as it found them.
remove_new_cg_parents() {
  local d
  [ -n "${CG_PARENTS_BEFORE:-}" ] || return 0
  for d in /sys/fs/cgroup/*/novabox /sys/fs/cgroup/novabox; do
    [ -d "$d" ] || continue
    case $CG_PARENTS_BEFORE in *" $d "*) continue ;; esac
    rmdir "$d" 2>/dev/null
  done
  return 0
}

# ---- samples (line i of every file = round i; "fail" lines skipped) --------------
# sample_stats FILE -> "median p90" (same definitions as the anchors' lib.sh)
sample_stats() {
  grep -E '^[0-9]+(\.[0-9]+)?$' "$1" | sort -g | awk '
    { v[NR]=$1 }
    END { n=NR; if (!n) { print "- -"; exit }
          med = (n%2) ? v[(n+1)/2] : (v[n/2]+v[n/2+1])/2
          i90 = int(0.9*n + 0.999999); if (i90<1) i90=1; if (i90>n) i90=n
          printf "%.1f %.1f\n", med, v[i90] }'
}
# paired A B ratio|diff -> median of per-round A/B or A-B (rounds where both succeeded)
paired() {
  paste "$1" "$2" | awk -v m="$3" '$1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $2 > 0 { print (m=="ratio") ? $1/$2 : $1-$2 }' |
    sort -g | awk -v m="$3" '
    { v[NR]=$1 }
    END { n=NR; if (!n) { print "-"; exit }
          med = (n%2) ? v[(n+1)/2] : (v[n/2]+v[n/2+1])/2
          printf (m=="ratio") ? "%.2f\n" : "%.1f\n", med }'
}

# ---- run as a command (for the anchors' PROJECT_CLEANUP / PROJECT_RUN) -------------
prep_samefs() {   # prep_samefs ROOTFS: a minimal rootfs on the blob's tmpfs (see cpu-overhead.sh)
  local r=$1 d=$1/data/nbroot
  mountpoint -q "$r/data" || bdie "$r/data is not a mount point"
  mkdir -p "$d"/{bin,data,dev,proc,sys,tmp,etc,root}
  chmod 1777 "$d/tmp"
  cp "$r/bin/busybox" "$d/bin/busybox.tmp" && mv "$d/bin/busybox.tmp" "$d/bin/busybox"
  cp "$r/etc/passwd" "$r/etc/group" "$d/etc/"
  ln -f "$r/data/blob" "$d/data/blob"   # the same tmpfs inode the host and crun read
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case ${1:-} in
    cleanup-root) cleanup_root "$2" ;;
    prep-samefs)  prep_samefs "$2" ;;
    *) echo "usage: bash $0 cleanup-root DIR | prep-samefs ROOTFS" >&2; exit 2 ;;
  esac
fi
