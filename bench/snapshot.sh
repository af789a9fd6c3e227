#!/bin/bash
# bench/snapshot.sh - `novabox server image create` side by side with tar and LXC on the
# fixture of ../shared/bench/anchors/snapshot.sh (~310 MiB, ~4,900 entries, ~10 MiB
# changed through an overlay), through that script's project hooks:
#
#   setup     import the fixture's lower dir as image "snapbase", create server "snapsrv"
#             from it, stop it, copy the fixture's upper dir (the 10 MiB change, with its
#             whiteouts and xattrs) into the server's upper dir, start it again
#   timed     bin/novabox server image create --name snap snapsrv   (the server RUNS:
#             it is frozen, synced, packed and thawed by the command)
#   cleanup   bin/novabox image delete snap                          (untimed)
#   teardown  delete the server and the images, remove the private state root
#
# Then (unless WARM=0) the same snapshot through a warm `novabox serve` on the same state
# root, fixture and change (the anchor's upper dir, saved by the first setup): rounds of
# `tar -cf` of the server's upper dir alternating with POST .../action {"createImage"}
# polled until the image is active (bench/snapshot-client.mjs).
#
# Then (unless BIG=0) the same on a ~3 GiB image: the fixture plus ~2.7 GiB of extra
# files in the image, the same 10 MiB change; only delta_tar and novabox are timed.
#
# Run as root:  bench/snapshot.sh        Knobs: ANCHOR_ROUNDS (5), WARM (1), BIG (1), BIG_MIB (2800),
#               ANCHOR_DIR (/var/tmp/anchors), SHARED_DIR (<repo>/../shared)
# The state root is on the fixture's disk (/var/tmp/novabox-bench-snap.XXXXXX), as the
# anchors' outputs are; everything is removed at exit.
#
# Also: bench/snapshot.sh hook-setup|hook-teardown ...  (called by the anchor script)
set -o pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
NOVABOX=$REPO/bin/novabox
SHARED_DIR=${SHARED_DIR:-$REPO/../shared}
ANCHORS=$SHARED_DIR/bench/anchors
unset NODE_EXTRA_CA_CERTS NODE_OPTIONS
nb() { timeout -k 10 600 "$NOVABOX" "$@" </dev/null; }

case ${1:-} in
hook-setup)
  # $2 = lower (the fixture rootfs), $3 = upper (the fixture's changes), $4 = extra MiB (0: none)
  set -e
  lower=$2 upper=$3 extra=${4:-0}
  src=$lower
  # the warm (serve) phase reuses this run's change
  if [ "$extra" = 0 ] && [ -n "${SAVE_UPPER:-}" ] && [ ! -d "$SAVE_UPPER" ]; then mkdir -p "$SAVE_UPPER"; cp -a "$upper/." "$SAVE_UPPER/"; fi
  if [ "$extra" -gt 0 ]; then
    src=$NOVABOX_ROOT/bigsrc
    mkdir -p "$src"
    cp -al "$lower/." "$src/"
    mkdir -p "$src/usr/share/big"
    for i in $(seq 1 $((extra / 100))); do head -c 100M /dev/urandom >"$src/usr/share/big/f$i.bin"; done
  fi
  nb image create --file "$src" snapbase -f value -c id
  [ "$src" = "$lower" ] || rm -rf "$src"
  nb server create --network none --image snapbase --flavor m1.small --wait snapsrv -f value -c id
  nb server stop --wait snapsrv
  id=$(nb server show snapsrv -f value -c id)
  cp -a "$upper/." "$NOVABOX_ROOT/servers/$id/upper/"
  nb server start --wait snapsrv
  echo "setup done: $(du -sh "$NOVABOX_ROOT/layers" | cut -f1) of layers, upper $(du -sh "$NOVABOX_ROOT/servers/$id/upper" | cut -f1)"
  exit 0
  ;;
hook-teardown)
  nb server delete --force snapsrv >/dev/null 2>&1
  nb image delete snap >/dev/null 2>&1
  nb image delete snapbase >/dev/null 2>&1
  exit 0
  ;;
esac

[ "$(id -u)" = 0 ] || { echo "# FATAL: run as root" >&2; exit 1; }
[ -x "$ANCHORS/snapshot.sh" ] || { echo "# FATAL: no $ANCHORS/snapshot.sh (set SHARED_DIR)" >&2; exit 1; }
ANCHOR_DIR=${ANCHOR_DIR:-/var/tmp/anchors}
export ANCHOR_DIR
mkdir -p /var/tmp
NB_ROOT=$(mktemp -d /var/tmp/novabox-bench-snap.XXXXXX)
export NOVABOX_ROOT=$NB_ROOT NOVABOX_CGROUP_PARENT=novabox-bench-$$
SERVE_PID=""
stop_serve() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"; for _ in $(seq 50); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVE_PID" 2>/dev/null
  fi
  SERVE_PID=""
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  stop_serve
  "$HERE/snapshot.sh" hook-teardown >/dev/null 2>&1
  rm -rf "${NB_ROOT:?}"
  for d in /sys/fs/cgroup/*/"$NOVABOX_CGROUP_PARENT" /sys/fs/cgroup/"$NOVABOX_CGROUP_PARENT"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  exit $rc
}
trap cleanup EXIT
trap 'echo "# interrupted" >&2; exit 130' INT TERM HUP

run_anchor() {
  # $1 = extra MiB for the image, $2 = label, rest = env for the anchor
  local extra=$1 label=$2; shift 2
  env "$@" PROJECT_LABEL="$label" \
    PROJECT_SNAPSHOT_SETUP="$HERE/snapshot.sh hook-setup {lower} {upper} $extra" \
    PROJECT_SNAPSHOT="$NOVABOX server image create --name snap snapsrv -f value -c id >/dev/null" \
    PROJECT_SNAPSHOT_CLEANUP="$NOVABOX image delete snap" \
    PROJECT_SNAPSHOT_TEARDOWN="$HERE/snapshot.sh hook-teardown" \
    "$ANCHORS/snapshot.sh"
}

echo "# novabox $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null) state root $NB_ROOT" >&2
export SAVE_UPPER=$NB_ROOT/warm-upper
run_anchor 0 novabox_snapshot
if [ "${WARM:-1}" = 1 ]; then
  echo "# the same snapshot through a warm novabox serve (rounds=${ANCHOR_ROUNDS:-5})" >&2
  [ -d "$SAVE_UPPER" ] || { echo "# FATAL: the anchor's change was not saved" >&2; exit 1; }
  "$HERE/snapshot.sh" hook-setup "$ANCHOR_DIR/big/anchor-big/rootfs" "$SAVE_UPPER" 0 >"$NB_ROOT/warm-setup.log" 2>&1 ||
    { cat "$NB_ROOT/warm-setup.log" >&2; echo "# FATAL: warm setup failed" >&2; exit 1; }
  PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  NOVABOX_ADMIN_PASSWORD=$PASSWORD "$NOVABOX" serve --listen 127.0.0.1:0 --no-access-log >"$NB_ROOT/serve.log" 2>&1 </dev/null &
  SERVE_PID=$!
  for _ in $(seq 100); do grep -q 'listening on' "$NB_ROOT/serve.log" && break; sleep 0.1; done
  URL=$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$NB_ROOT/serve.log" | head -1)
  [ -n "$URL" ] || { cat "$NB_ROOT/serve.log" >&2; echo "# FATAL: serve did not start" >&2; exit 1; }
  SID=$(nb server show snapsrv -f value -c id)
  mkdir -p "$NB_ROOT/warm-out"
  timeout -k 10 900 node "$HERE/snapshot-client.mjs" "$URL" admin "$PASSWORD" "$SID" "$NB_ROOT/servers/$SID/upper" "$NB_ROOT/warm-out" "${ANCHOR_ROUNDS:-5}" ||
    echo "# warm serve phase failed" >&2
  stop_serve
  "$HERE/snapshot.sh" hook-teardown
fi
if [ "${BIG:-1}" = 1 ]; then
  echo "# the same change on a ~3 GiB image" >&2
  run_anchor "${BIG_MIB:-2800}" novabox_snapshot_3g ANCHOR_CANDIDATES="delta_tar"
fi
