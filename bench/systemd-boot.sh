#!/bin/bash
# bench/systemd-boot.sh - a Debian system container booting its own systemd, side by side
# in one run (issue 17): novabox vs lxc-start of the same debootstrap rootfs.
#
#   novabox  server create --init systemd --network none --userns auto (its own id range,
#            idmapped layers), then `server exec -- systemctl is-system-running` until it
#            answers running (or degraded); `server stop` (SIGRTMIN+3)
#   lxc      lxc-start -d of a copy of the rootfs, unprivileged (lxc.idmap, the rootfs
#            idmapped: lxc.rootfs.options = idmap=container), debian.common.conf and
#            debian.userns.conf, lxc.net.0.type = empty (no network, as --network none),
#            the same memory limit; `lxc-attach -- systemctl is-system-running` until
#            running or degraded; `lxc-stop`
#
#   ROUNDS=5 ROOTFS=/var/cache/novabox/debootstrap/<key>/rootfs bench/systemd-boot.sh     (as root)
#
# Per round and tool: boot = from the start command to the first running/degraded answer,
# polled the same way for both, every 20 ms: `nsenter -t <pid 1> -a systemctl
# is-system-running` (no CLI in the loop: a novabox exec costs a Node start per poll,
# lxc-attach none); state = that answer, stop = the stop command's
# wall time, and after SETTLE seconds of idling the container's memory cgroup:
# usage_in_bytes (page cache included) and rss (memory.stat total_rss: anonymous memory).
# Then medians, and novabox/lxc ratios. NODE_EXTRA_CA_CERTS is unset (bench/lib.sh).
# COLD=1 drops the page cache before each boot (both then read the rootfs from disk).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROUNDS=${ROUNDS:-5}
SETTLE=${SETTLE:-3}
ROOTFS=${ROOTFS:-/var/cache/novabox-dev/bookworm}
[ "$(id -u)" = 0 ] || bdie "run as root"
[ -x "$ROOTFS/lib/systemd/systemd" ] || bdie "no systemd in $ROOTFS (set ROOTFS to a Debian rootfs with systemd-sysv, e.g. the cache entry of novabox image build debian: /var/cache/novabox/debootstrap/<key>/rootfs)"
command -v lxc-start >/dev/null || bdie "lxc is not installed (apt-get install lxc)"
MEM_MIB=2048

WORK=$(mktemp -d /var/tmp/nbx-sysboot-XXXXXX)
chmod 755 "$WORK" # the path to LXC's rootfs, walked as the container's root
export NOVABOX_ROOT=$WORK/root NOVABOX_CGROUP_PARENT=novabox-bench-sysboot
LXCPATH=$WORK/lxc
# LXC's ids: the last 65,536 of root's /etc/subuid and /etc/subgid entry (newuidmap's
# rule), far from the slots novabox leases from the start of the same entry.
read -r SUB_START SUB_COUNT < <(awk -F: '$1 == "root" { print $2, $3; exit }' /etc/subuid)
[ -n "${SUB_START:-}" ] || bdie "root has no /etc/subuid entry (novabox adds one on first use: run novabox once)"
LXC_BASE=$((SUB_START + SUB_COUNT - 65536))

cleanup() {
  lxc-stop -P "$LXCPATH" -n deb -k >/dev/null 2>&1
  "$NOVABOX" server delete --force b1 >/dev/null 2>&1
  bash "$HERE/lib.sh" cleanup-root "$NOVABOX_ROOT" >/dev/null 2>&1
  rmdir /sys/fs/cgroup/*/"$NOVABOX_CGROUP_PARENT" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

blog "$(busy_note)"
blog "import $ROOTFS as an image (its /dev left out) and copy it for LXC"
mkdir -p "$NOVABOX_ROOT" "$LXCPATH/deb"
tar -C "$ROOTFS" --exclude='./dev/*' -c . >"$WORK/rootfs.tar" || bdie "tar $ROOTFS"
"$NOVABOX" image create --file "$WORK/rootfs.tar" --property os_init=systemd debian -f value -c id >/dev/null || bdie "image create"
rm -f "$WORK/rootfs.tar"
cp -a "$ROOTFS" "$LXCPATH/deb/rootfs" && rm -rf "$LXCPATH/deb/rootfs/dev/"*
cat >"$LXCPATH/deb/config" <<EOF
lxc.include = /usr/share/lxc/config/debian.common.conf
lxc.include = /usr/share/lxc/config/debian.userns.conf
lxc.arch = linux64
lxc.uts.name = deb
lxc.rootfs.path = dir:$LXCPATH/deb/rootfs
lxc.rootfs.options = idmap=container
lxc.idmap = u 0 $LXC_BASE 65536
lxc.idmap = g 0 $LXC_BASE 65536
lxc.net.0.type = empty
lxc.cgroup.memory.limit_in_bytes = $((MEM_MIB << 20))
lxc.cgroup2.memory.max = $((MEM_MIB << 20))
lxc.console.logfile = $LXCPATH/deb/console.log
EOF

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

# pid1 CGROUP-RELATIVE-PATH: the host pid of that container's pid 1 (the process of its
# cgroup whose innermost pid is 1), found the same way for both (no CLI call in the timing)
pid1() {
  local f p
  for f in $(find "$(piddir "$1")" -name cgroup.procs 2>/dev/null); do
    for p in $(cat "$f"); do
      awk '$1 == "NSpid:" && $NF == 1 && NF > 2 { found = 1 } END { exit !found }' "/proc/$p/status" 2>/dev/null && { echo "$p"; return 0; }
    done
  done
  return 1
}
piddir() { # piddir RELATIVE-PATH: its directory in the pids hierarchy (v1) or the cgroup2 tree
  if [ -d /sys/fs/cgroup/pids ]; then echo "/sys/fs/cgroup/pids/$1"; else echo "/sys/fs/cgroup/$1"; fi
}

# poll PID: until the systemd of that pid 1 says running/degraded (at most 60 s): the state
poll() {
  local i r
  for i in $(seq 1 3000); do
    r=$(nsenter -t "$1" -a systemctl is-system-running 2>/dev/null)
    case "$r" in running | degraded) echo "$r"; return 0 ;; esac
    sleep 0.02
  done
  echo "timeout:$r"
}

# memory of a cgroup v1 memory directory or a cgroup2 directory: "usage rss" in MiB
memory_of() {
  local d=$1
  if [ -f "$d/memory.usage_in_bytes" ]; then
    echo "$(($(cat "$d/memory.usage_in_bytes") >> 20)) $(($(awk '$1 == "total_rss" { print $2 }' "$d/memory.stat") >> 20))"
  else
    echo "$(($(cat "$d/memory.current") >> 20)) $(($(awk '$1 == "anon" { print $2 }' "$d/memory.stat") >> 20))"
  fi
}
memdir() { # memdir RELATIVE-PATH
  if [ -d /sys/fs/cgroup/memory ]; then echo "/sys/fs/cgroup/memory/$1"; else echo "/sys/fs/cgroup/$1"; fi
}

RES=$WORK/results
: >"$RES"
flavor=$("$NOVABOX" flavor list -f value -c Name -c RAM | awk -v m=$MEM_MIB '$2 == m { print $1; exit }')
[ -n "$flavor" ] || bdie "no flavor with ${MEM_MIB} MiB"
for r in $(seq 1 "$ROUNDS"); do
  # alternate who goes first
  order="novabox lxc"
  [ $((r % 2)) = 0 ] && order="lxc novabox"
  for tool in $order; do
    sync
    [ "${COLD:-0}" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
    if [ "$tool" = novabox ]; then
      t0=$(now)
      "$NOVABOX" server create --image debian --flavor "$flavor" --init systemd --network none --wait b1 -f value -c id >"$WORK/id" || bdie "server create"
      state=$(poll "$(pid1 "$NOVABOX_CGROUP_PARENT/$(cat "$WORK/id")")")
      t1=$(now)
      sleep "$SETTLE"
      mem=$(memory_of "$(memdir "$NOVABOX_CGROUP_PARENT/$(cat "$WORK/id")")")
      t2=$(now)
      "$NOVABOX" server stop b1 >/dev/null || bdie "server stop"
      t3=$(now)
      grep -q 'Halting system' "$NOVABOX_ROOT/servers/$(cat "$WORK/id")/console.log" && clean=clean || clean=unclean
      "$NOVABOX" server delete b1 >/dev/null
    else
      t0=$(now)
      lxc-start -P "$LXCPATH" -n deb -d || bdie "lxc-start"
      state=$(poll "$(pid1 lxc.payload.deb)")
      t1=$(now)
      sleep "$SETTLE"
      mem=$(memory_of "$(memdir lxc.payload.deb)")
      t2=$(now)
      lxc-stop -P "$LXCPATH" -n deb >/dev/null || bdie "lxc-stop"
      t3=$(now)
      grep -q 'Halting system' "$LXCPATH/deb/console.log" && clean=clean || clean=unclean
      : >"$LXCPATH/deb/console.log"
    fi
    echo "$tool $(ms "$t0" "$t1") $state $(ms "$t2" "$t3") $clean $mem" | tee -a "$RES" >&2
  done
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
printf '%-8s %10s %8s %10s %10s %8s  %s\n' tool boot_ms stop_ms usage_MiB rss_MiB clean states
for tool in novabox lxc; do
  b=$(awk -v t=$tool '$1 == t { print $2 }' "$RES" | median)
  s=$(awk -v t=$tool '$1 == t { print $4 }' "$RES" | median)
  u=$(awk -v t=$tool '$1 == t { print $6 }' "$RES" | median)
  m=$(awk -v t=$tool '$1 == t { print $7 }' "$RES" | median)
  c=$(awk -v t=$tool '$1 == t && $5 == "clean"' "$RES" | wc -l)
  st=$(awk -v t=$tool '$1 == t { print $3 }' "$RES" | sort | uniq -c | awk '{ printf "%s%s=%s", sep, $2, $1; sep = "," }')
  printf '%-8s %10s %8s %10s %10s %8s  %s\n' "$tool" "$b" "$s" "$u" "$m" "$c/$ROUNDS" "$st"
  eval "${tool}_b=$b ${tool}_s=$s ${tool}_u=$u"
done
# shellcheck disable=SC2154
awk -v nb="$novabox_b" -v lx="$lxc_b" -v ns="$novabox_s" -v ls="$lxc_s" -v nu="$novabox_u" -v lu="$lxc_u" 'BEGIN {
  printf "novabox/lxc: boot %.2f, stop %.2f, memory %.2f\n", nb / lx, ns / ls, (lu ? nu / lu : 0)
}'
