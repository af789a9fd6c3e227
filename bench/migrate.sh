#!/bin/bash
# bench/migrate.sh - `novabox server migrate` side by side with the LXC way and the floor,
# on one machine: two private state roots on the same disk, the target reached through
# `--to exec:env NOVABOX_ROOT=B ... novabox server receive` (a pipe, as ssh would be).
#
# Fixture (generated, seed-free): a rootfs of busybox (the host's /usr/bin/busybox and its
# applet links) plus IMAGE_MIB (300) MiB of random bytes in files of 64 KiB to 2 MiB (~290)
# under /usr/share/big, imported as image "migbase"; a server "migsrv" from it (no
# network), ACTIVE, with CHANGE_MIB (10) MiB written into it (10 new files) and a file of
# the image deleted (a whiteout).
#
# Measured (bytes = what went through the pipe; wall = the command, ms):
#   novabox_cold      server migrate A->B, the target lacking the image (all layers sent)
#   novabox_delta     server migrate B->A, the target having the image (the writable layer only)
#   lxc_copy          lxc-copy of a stopped LXC container holding the same rootfs (dir
#                     backend: an rsync of the whole rootfs), on A's disk
#   lxc_rsync         rsync -a --stats of that whole container dir to B's side (the move)
#   floor_rsync       rsync -a --stats of only the server's upper dir (the change) to B's side
#   downtime          ROUNDS (10) cold migrations back and forth with pre-copy, the median of
#                     the downtime --debug reports (stop here -> ACTIVE there), and the
#                     wall time of each
#   downtime_noimage  NOIMAGE_ROUNDS (5) migrations A->B with pre-copy to a B that lacks the
#                     image (deleted there before each; the server comes back to A between
#                     them, not counted): the downtime should not depend on the image
#
# Run as root:  bench/migrate.sh     Knobs: IMAGE_MIB (300), CHANGE_MIB (10), ROUNDS (10), NOIMAGE_ROUNDS (5),
#               WORK (/var/tmp, where the state roots and the LXC dirs go)
# Everything is removed at exit. Output lines: "migrate <what> bytes=N wall_ms=N" and
# "migrate_downtime n= median= min= max= (ms)", "migrate_wall n= median=" and
# "migrate_downtime_noimage n= median= min= max= (ms)".
set -eo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
NOVABOX=$REPO/bin/novabox
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
IMAGE_MIB=${IMAGE_MIB:-300}
CHANGE_MIB=${CHANGE_MIB:-10}
ROUNDS=${ROUNDS:-10}
NOIMAGE_ROUNDS=${NOIMAGE_ROUNDS:-5}
[ "$(id -u)" = 0 ] || { echo "# run as root" >&2; exit 1; }
for c in rsync lxc-copy busybox; do command -v $c >/dev/null || { echo "# needs $c (apt-get install -y ${c/lxc-copy/lxc})" >&2; exit 1; }; done

W=$(mktemp -d "${WORK:-/var/tmp}/novabox-bench-mig.XXXXXX")
A=$W/a B=$W/b
mkdir -p "$A" "$B" "$W/lxc" "$W/lxc-b" "$W/floor"
tag=$(basename "$W" | tr -dc 'a-z0-9' | tail -c 5)
printf '{"network":{"bridge":"nbxma%s","subnet":"10.250.91.0/24","nat":false}}\n' "$tag" >"$A/config.json"
printf '{"network":{"bridge":"nbxmb%s","subnet":"10.250.92.0/24","nat":false}}\n' "$tag" >"$B/config.json"
nbA() { NOVABOX_ROOT=$A NOVABOX_CGROUP_PARENT=novabox-bench-mig-a timeout -k 10 600 "$NOVABOX" "$@" </dev/null; }
nbB() { NOVABOX_ROOT=$B NOVABOX_CGROUP_PARENT=novabox-bench-mig-b timeout -k 10 600 "$NOVABOX" "$@" </dev/null; }
TO_B="exec:env NOVABOX_ROOT=$B NOVABOX_CGROUP_PARENT=novabox-bench-mig-b $(command -v node) $NOVABOX server receive"
TO_A="exec:env NOVABOX_ROOT=$A NOVABOX_CGROUP_PARENT=novabox-bench-mig-a $(command -v node) $NOVABOX server receive"

cleanup() {
  set +e
  for nb in nbA nbB; do
    for id in $($nb server list -f value -c ID 2>/dev/null); do $nb server delete --force "$id" >/dev/null 2>&1; done
  done
  lxc-destroy -P "$W/lxc" -n migsrc >/dev/null 2>&1
  lxc-destroy -P "$W/lxc" -n migcopy >/dev/null 2>&1
  ip link del "nbxma$tag" 2>/dev/null
  ip link del "nbxmb$tag" 2>/dev/null
  rm -rf "$W"
  for d in /sys/fs/cgroup/novabox-bench-mig-* /sys/fs/cgroup/*/novabox-bench-mig-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
}
trap cleanup EXIT
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# ---- the fixture
R=$W/rootfs
mkdir -p "$R/bin" "$R/usr/share/big" "$R/etc" "$R/tmp"
cp /usr/bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
left=$((IMAGE_MIB * 1024)) i=0
while [ $left -gt 0 ]; do
  kib=$((64 + (i * 7919) % 1984)); [ $kib -gt $left ] && kib=$left
  head -c $((kib * 1024)) /dev/urandom >"$R/usr/share/big/f$i.bin"
  left=$((left - kib)) i=$((i + 1))
done
echo "# fixture: $(du -sm "$R" | cut -f1) MiB in $(find "$R" | wc -l) entries" >&2
nbA image create --file "$R" migbase -f value -c id >/dev/null
nbA server create --network none --image migbase --flavor m1.small --wait migsrv -f value -c id >/dev/null
id=$(nbA server show migsrv -f value -c id)
nbA server exec migsrv -- sh -c "mkdir -p /srv/change && for n in \$(seq 1 $CHANGE_MIB); do head -c 1048576 /dev/urandom > /srv/change/c\$n; done; rm /usr/share/big/f1.bin; sync"
echo "# server $id: upper $(du -sm "$A/servers/$id/upper" | cut -f1) MiB" >&2

# ---- the LXC way: a stopped container whose rootfs is the server's whole tree, copied
# with lxc-copy (dir backend) and moved with rsync -a to the other side
mkdir -p "$W/lxc/migsrc"
cp -a "$R" "$W/lxc/migsrc/rootfs"
cp -a "$A/servers/$id/upper/srv" "$W/lxc/migsrc/rootfs/"
rm "$W/lxc/migsrc/rootfs/usr/share/big/f1.bin"
printf 'lxc.uts.name = migsrc\nlxc.rootfs.path = dir:%s\n' "$W/lxc/migsrc/rootfs" >"$W/lxc/migsrc/config"
sync
t0=$(now_ms)
lxc-copy -P "$W/lxc" -n migsrc -N migcopy >/dev/null
t1=$(now_ms)
echo "migrate lxc_copy bytes=$(du -sb "$W/lxc/migcopy/rootfs" | cut -f1) wall_ms=$((t1 - t0))"
sync
t0=$(now_ms)
sent=$(rsync -a --stats "$W/lxc/migcopy/" "$W/lxc-b/migcopy/" | awk -F': ' '/^Total bytes sent/ {gsub(/,/, "", $2); print $2}')
t1=$(now_ms)
echo "migrate lxc_rsync bytes=$sent wall_ms=$((t1 - t0))"

# ---- the floor: rsync of the upper dir alone
sync
t0=$(now_ms)
sent=$(rsync -a --stats "$A/servers/$id/upper/" "$W/floor/upper/" | awk -F': ' '/^Total bytes sent/ {gsub(/,/, "", $2); print $2}')
t1=$(now_ms)
echo "migrate floor_rsync bytes=$sent wall_ms=$((t1 - t0))"

# ---- novabox: to B (which lacks the image), back to A (which has it)
run_mig() { # $1 = nb function, $2 = --to, $3 = label; prints the result line, the downtime on fd 3
  local t0 t1 out
  sync
  t0=$(now_ms)
  out=$($1 --debug server migrate migsrv --to "$2" 2>&1 >/dev/null) || { echo "# migrate failed: $out" >&2; exit 1; }
  t1=$(now_ms)
  local bytes down
  bytes=$(sed -n 's/.*: \([0-9]*\) bytes sent.*/\1/p' <<<"$out")
  down=$(sed -n 's/.*downtime \([0-9]*\) ms.*/\1/p' <<<"$out")
  [ -n "$3" ] && echo "migrate $3 bytes=$bytes wall_ms=$((t1 - t0)) downtime_ms=$down ($(sed 's/^novabox: //' <<<"$out" | tr '\n' ' '))"
  echo "$down $((t1 - t0))" >&3
}
exec 3>>"$W/rounds"
run_mig nbA "$TO_B" novabox_cold
run_mig nbB "$TO_A" novabox_delta
: >"$W/rounds"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run_mig nbA "$TO_B" ""; else run_mig nbB "$TO_A" ""; fi
done
exec 3>&-
n=$(wc -l <"$W/rounds")
echo "migrate_downtime n=$n median=$(cut -d' ' -f1 "$W/rounds" | median) min=$(cut -d' ' -f1 "$W/rounds" | sort -n | head -1) max=$(cut -d' ' -f1 "$W/rounds" | sort -n | tail -1) (ms)"
echo "migrate_wall n=$n median=$(cut -d' ' -f2 "$W/rounds" | median) (ms)"

# ---- downtime when the target lacks the image: its layers go before the stop
nbA server show migsrv >/dev/null 2>&1 || run_mig nbB "$TO_A" "" 3>/dev/null
exec 3>>"$W/noimage"
for r in $(seq 1 "$NOIMAGE_ROUNDS"); do
  nbB image delete migbase >/dev/null
  run_mig nbA "$TO_B" ""
  run_mig nbB "$TO_A" "" 3>/dev/null
done
exec 3>&-
echo "migrate_downtime_noimage n=$(wc -l <"$W/noimage") median=$(cut -d' ' -f1 "$W/noimage" | median) min=$(cut -d' ' -f1 "$W/noimage" | sort -n | head -1) max=$(cut -d' ' -f1 "$W/noimage" | sort -n | tail -1) (ms)"
