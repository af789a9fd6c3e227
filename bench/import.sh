#!/bin/bash
# bench/import.sh - import throughput of a ~310 MiB rootfs tarball (the rootfs of
# ../shared/bench/anchors/snapshot.sh's fixture, ~4,900 entries), round-robin:
#
#   gnu_tar     tar -xf FILE -C DIR --numeric-owner --xattrs     (GNU tar alone)
#   npm_tar     node: require('tar').x({ file, cwd, preserveOwner }) (the tar package)
#   novabox     bin/novabox image create --file FILE NAME          (validate + hash +
#               GNU tar + whiteouts + record; a fresh image each round)
#
# for the uncompressed tar and (COMP=zstd, default also run) a zstd-compressed copy.
# Each round's output is removed (untimed) and `sync` runs before each timed command.
# Reports median ms and MiB/s (of the uncompressed tar) per candidate, and ratios.
#
# Run as root:  bench/import.sh      Knobs: ROUNDS (5), ANCHOR_DIR (/var/tmp/anchors)
# Needs the fixture: run bench/snapshot.sh (or the anchor snapshot.sh) once first.
set -o pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
NOVABOX=$REPO/bin/novabox
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
ANCHOR_DIR=${ANCHOR_DIR:-/var/tmp/anchors}
ROUNDS=${ROUNDS:-5}
LOWER=$ANCHOR_DIR/big/anchor-big/rootfs
[ "$(id -u)" = 0 ] || { echo "# FATAL: run as root" >&2; exit 1; }
[ -d "$LOWER" ] || { echo "# FATAL: no fixture at $LOWER: run bench/snapshot.sh once" >&2; exit 1; }

W=$(mktemp -d /var/tmp/novabox-bench-import.XXXXXX)
export NOVABOX_ROOT=$W/root NOVABOX_CGROUP_PARENT=novabox-bench-$$
trap 'rm -rf "${W:?}"' EXIT
trap 'exit 130' INT TERM HUP

tar --xattrs --numeric-owner -cf "$W/rootfs.tar" -C "$LOWER" .
zstd -q -T0 -3 "$W/rootfs.tar" -o "$W/rootfs.tar.zst"
MIB=$(( $(stat -c %s "$W/rootfs.tar") / 1048576 ))
echo "import_fixture tar_mib=$MIB entries=$(tar -tf "$W/rootfs.tar" | wc -l) zst_mib=$(( $(stat -c %s "$W/rootfs.tar.zst") / 1048576 ))"

N=0
ms() { echo "scale=2; ($2 - $1) * 1000 / 1" | bc; }
run_gnu_tar() { mkdir "$W/x"; if [ "${1##*.}" = zst ]; then tar --zstd -xf "$1" -C "$W/x" --numeric-owner --xattrs --xattrs-include='*'; else tar -xf "$1" -C "$W/x" --numeric-owner --xattrs --xattrs-include='*'; fi; }
run_npm_tar() {
  mkdir "$W/x"
  if [ "${1##*.}" = zst ]; then
    zstd -dc -q "$1" | node -e "process.stdin.pipe(require('$REPO/node_modules/tar').x({ cwd: '$W/x', preserveOwner: true }))"
  else
    node -e "require('$REPO/node_modules/tar').x({ file: '$1', cwd: '$W/x', preserveOwner: true, sync: true })"
  fi
}
run_novabox() { N=$((N + 1)); "$NOVABOX" image create --file "$1" "imp$N" -f value -c id >/dev/null; }
clean() { rm -rf "$W/x"; "$NOVABOX" image delete "imp$N" >/dev/null 2>&1 || true; }

for f in rootfs.tar rootfs.tar.zst; do
  for c in gnu_tar npm_tar novabox; do : >"$W/$c.$f.ms"; done
  "$NOVABOX" image list >/dev/null   # database and busybox made once, untimed
  for r in $(seq 1 "$ROUNDS"); do
    for c in gnu_tar npm_tar novabox; do
      sync
      t0=$EPOCHREALTIME
      "run_$c" "$W/$f" || { echo "# $c failed" >&2; }
      t1=$EPOCHREALTIME
      ms "$t0" "$t1" >>"$W/$c.$f.ms"
      clean
    done
  done
  for c in gnu_tar npm_tar novabox; do
    med=$(sort -n "$W/$c.$f.ms" | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}')
    min=$(sort -n "$W/$c.$f.ms" | head -1); max=$(sort -n "$W/$c.$f.ms" | tail -1)
    echo "import_ms $c input=$f n=$ROUNDS median=$med min=$min max=$max mib_per_s=$(echo "scale=1; $MIB * 1000 / $med" | bc)"
    eval "MED_$c=$med"
  done
  echo "import_ratio input=$f npm_tar/gnu_tar=$(echo "scale=2; $MED_npm_tar / $MED_gnu_tar" | bc) novabox/gnu_tar=$(echo "scale=2; $MED_novabox / $MED_gnu_tar" | bc)"
done
