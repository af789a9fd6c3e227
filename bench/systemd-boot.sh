#!/bin/bash
# bench/systemd-boot.sh - a Debian system container booting its own systemd, side by side
# in one run (issue 17): novabox vs lxc-start of the same debootstrap rootfs.
#
#   novabox  server create --init systemd --network none --userns auto (its own id range,
#            idmapped layers) --wait; `server stop` (SIGRTMIN+3)
#   lxc      lxc-start -d of a copy of the rootfs, unprivileged (lxc.idmap, the rootfs
#            idmapped: lxc.rootfs.options = idmap=container), debian.common.conf and
#            debian.userns.conf, lxc.net.0.type = empty (no network, as --network none),
#            the same memory limit; `lxc-stop`
#
#   ROUNDS=5 ROOTFS=/var/cache/novabox/debootstrap/<key>/rootfs bench/systemd-boot.sh     (as root)
#
# BOOT=first (the default): each round a new container's first boot: novabox `server
# create` (a new writable layer), LXC a fresh copy of the rootfs (made before the timing).
# BOOT=reboot: each container made and booted once before the rounds, then each round
# boots it again: novabox `server start`, LXC lxc-start of the same rootfs (its journal,
# machine id and copied-up files already there, for both).
#
# Rounds alternate which tool goes first. Per round and tool, all from the host and the
# same for both (no CLI of either tool in the probe: a novabox exec would cost a Node
# start per poll, lxc-attach none):
#   boot   from the start command to the moment systemd finished its boot job queue, read
#          from systemd itself (FinishTimestampMonotonic; neither tool gives its container
#          a time namespace, so that is the host's CLOCK_MONOTONIC): no polling interval in it
#   exec   from the start command to systemd's start (UserspaceTimestampMonotonic): what
#          the tool costs before the image's init runs (for novabox Node's start included)
#   sysd   systemd's own boot, exec to finish (the units it runs, in the environment the
#          tool gives it)
#   seen   from the start command to the first answer running/degraded of a probe that
#          every 20 ms runs `nsenter -t <pid 1> -a systemctl is-system-running`, the pid
#          found the same way for both (the process of the container's cgroup whose
#          innermost pid is 1)
#   state  that answer; stop = the stop command's wall time and clean = whether systemd
#          halted (its console log); after SETTLE seconds of idling the container's memory
#          cgroup: usage (page cache included) and rss (anonymous memory).
# Then medians, and novabox/lxc ratios. NODE_EXTRA_CA_CERTS is unset (bench/lib.sh).
# COLD=1 drops the page cache before each boot (both then read the rootfs from disk).
#
# Why LXC says degraded and novabox running: LXC's unprivileged configuration
# (userns.conf empties lxc.cap.drop) leaves the container every capability of its user
# namespace, so systemd starts units a container cannot complete: sys-kernel-debug.mount
# (ConditionCapability=CAP_SYS_RAWIO; debugfs cannot be mounted from a user namespace: it
# fails, hence degraded), the six modprobe@*.service and systemd-modules-load
# (CAP_SYS_MODULE; a minbase image has no modprobe), e2scrub_reap (CAP_SYS_RAWIO). novabox
# drops CAP_SYS_MODULE and CAP_SYS_RAWIO from a system container's bounding set, as LXC's
# privileged common.conf does, so those conditions skip them: no failed unit. novabox's
# /proc/sys is read-only, net/ included, so systemd-sysctl (ConditionPathIsReadWrite=
# /proc/sys/net/) is skipped too, and it mounts /dev/mqueue itself (no dev-mqueue.mount to
# run): 11 units fewer than under LXC, all the others the same.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
ROUNDS=${ROUNDS:-5}
SETTLE=${SETTLE:-3}
ROOTFS=${ROOTFS:-/var/cache/novabox-dev/bookworm}
BOOT=${BOOT:-first}
case "$BOOT" in first | reboot) ;; *) bdie "BOOT is first or reboot, not $BOOT" ;; esac
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
cp -a "$ROOTFS" "$WORK/pristine" && rm -rf "$WORK/pristine/dev/"* || bdie "copy $ROOTFS"
# lxc_rootfs: LXC's container a copy of the rootfs as it came (its first boot, as a new server's)
lxc_rootfs() {
  rm -rf "$LXCPATH/deb/rootfs" && cp -a "$WORK/pristine" "$LXCPATH/deb/rootfs" || bdie "copy the rootfs for LXC"
}
lxc_rootfs
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

# the host's CLOCK_MONOTONIC in microseconds without a fork: bash's EPOCHREALTIME less the
# realtime-monotonic offset taken once (what systemd's *TimestampMonotonic are counted in)
OFFSET_US=$(python3 -c 'import time; print((time.time_ns() - time.monotonic_ns()) // 1000)') || bdie "python3 is needed"
now() { local t=${EPOCHREALTIME/./}; echo $((t - OFFSET_US)); }
ms() { echo $((($2 - $1) / 1000)); }

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

# poll PID: until the systemd of that pid 1 says running/degraded (at most 60 s):
# "STATE USERSPACE_US FINISH_US" (systemd's monotonic timestamps of its start and of its boot's end)
poll() {
  local i r
  for i in $(seq 1 3000); do
    r=$(nsenter -t "$1" -a systemctl is-system-running 2>/dev/null)
    case "$r" in running | degraded)
      echo "$r $(nsenter -t "$1" -a systemctl show -P UserspaceTimestampMonotonic -P FinishTimestampMonotonic 2>/dev/null | tr '\n' ' ')"
      return 0 ;;
    esac
    sleep 0.02
  done
  echo "timeout:$r 0 0"
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
if [ "$BOOT" = reboot ]; then
  # the containers each round boots again: made and booted once here, untimed
  "$NOVABOX" server create --image debian --flavor "$flavor" --init systemd --network none --userns auto --wait b1 -f value -c id >"$WORK/id" || bdie "server create"
  lxc-start -P "$LXCPATH" -n deb -d || bdie "lxc-start"
  sleep "$SETTLE"
  "$NOVABOX" server stop b1 >/dev/null || bdie "server stop"
  lxc-stop -P "$LXCPATH" -n deb >/dev/null || bdie "lxc-stop"
fi
for r in $(seq 1 "$ROUNDS"); do
  # alternate who goes first
  order="novabox lxc"
  [ $((r % 2)) = 0 ] && order="lxc novabox"
  for tool in $order; do
    sync
    [ "${COLD:-0}" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
    if [ "$tool" = novabox ]; then
      t0=$(now)
      if [ "$BOOT" = reboot ]; then
        "$NOVABOX" server start b1 >/dev/null || bdie "server start"
      else
        "$NOVABOX" server create --image debian --flavor "$flavor" --init systemd --network none --userns auto --wait b1 -f value -c id >"$WORK/id" || bdie "server create"
      fi
      read -r state tx tf < <(poll "$(pid1 "$NOVABOX_CGROUP_PARENT/$(cat "$WORK/id")")")
      t1=$(now)
      sleep "$SETTLE"
      mem=$(memory_of "$(memdir "$NOVABOX_CGROUP_PARENT/$(cat "$WORK/id")")")
      t2=$(now)
      "$NOVABOX" server stop b1 >/dev/null || bdie "server stop"
      t3=$(now)
      grep -q 'Halting system' "$NOVABOX_ROOT/servers/$(cat "$WORK/id")/console.log" && clean=clean || clean=unclean
      if [ "$BOOT" = reboot ]; then : >"$NOVABOX_ROOT/servers/$(cat "$WORK/id")/console.log"; else "$NOVABOX" server delete b1 >/dev/null; fi
    else
      [ "$BOOT" = first ] && [ "$r" -gt 1 ] && lxc_rootfs
      sync
      t0=$(now)
      lxc-start -P "$LXCPATH" -n deb -d || bdie "lxc-start"
      read -r state tx tf < <(poll "$(pid1 lxc.payload.deb)")
      t1=$(now)
      sleep "$SETTLE"
      mem=$(memory_of "$(memdir lxc.payload.deb)")
      t2=$(now)
      lxc-stop -P "$LXCPATH" -n deb >/dev/null || bdie "lxc-stop"
      t3=$(now)
      grep -q 'Halting system' "$LXCPATH/deb/console.log" && clean=clean || clean=unclean
      : >"$LXCPATH/deb/console.log"
    fi
    # tool seen state stop clean usage rss boot exec sysd
    echo "$tool $(ms "$t0" "$t1") $state $(ms "$t2" "$t3") $clean $mem $(ms "$t0" "$tf") $(ms "$t0" "$tx") $(ms "$tx" "$tf")" | tee -a "$RES" >&2
  done
done

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
printf '%-8s %8s %8s %8s %8s %8s %10s %8s %8s  %s\n' tool boot_ms exec_ms sysd_ms seen_ms stop_ms usage_MiB rss_MiB clean states
for tool in novabox lxc; do
  col() { awk -v t=$tool -v c="$1" '$1 == t { print $c }' "$RES" | median; }
  b=$(col 8) x=$(col 9) y=$(col 10) n=$(col 2) s=$(col 4) u=$(col 6) m=$(col 7)
  c=$(awk -v t=$tool '$1 == t && $5 == "clean"' "$RES" | wc -l)
  st=$(awk -v t=$tool '$1 == t { print $3 }' "$RES" | sort | uniq -c | awk '{ printf "%s%s=%s", sep, $2, $1; sep = "," }')
  printf '%-8s %8s %8s %8s %8s %8s %10s %8s %8s  %s\n' "$tool" "$b" "$x" "$y" "$n" "$s" "$u" "$m" "$c/$ROUNDS" "$st"
  eval "${tool}_b=$b ${tool}_n=$n ${tool}_s=$s ${tool}_u=$u"
done
# shellcheck disable=SC2154
awk -v nb="$novabox_b" -v lb="$lxc_b" -v nn="$novabox_n" -v ln="$lxc_n" -v ns="$novabox_s" -v ls="$lxc_s" -v nu="$novabox_u" -v lu="$lxc_u" 'BEGIN {
  printf "novabox/lxc: boot %.2f, seen %.2f, stop %.2f, memory %.2f\n", nb / lb, nn / ln, ns / ls, (lu ? nu / lu : 0)
}'
