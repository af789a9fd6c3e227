#!/bin/bash
# bench/cpu-overhead.sh - the same CPU-bound job on the host, in crun and in novabox,
# in one round-robin run of ../shared/bench/anchors/cpu-overhead.sh (busybox
# `sha256sum /data/blob` of a 512 MiB random file on tmpfs, whole process timed).
#
#   bench/cpu-overhead.sh                          (as root)
#
# Where the blob lives: the anchor mounts a tmpfs on <rootfs>/data and writes the blob
# there. crun bind-mounts the rootfs recursively, so its container sees the tmpfs.
# novabox uses --rootfs DIR as an overlay *lower* dir, and overlayfs does not follow
# mounts below its layers: the container's /data is the empty directory under the
# tmpfs, unless it is passed in with -v as a user would (the default mode):
#
#   NOVABOX_CPU_MODE=volume (default) the documented hook plus -v {rootfs}/data:/data
#   NOVABOX_CPU_MODE=plain            the hook the anchors document, unchanged:
#       novabox run --rm --name {name} ... --rootfs {rootfs} /bin/busybox sha256sum /data/blob
#       -> novabox fails ("can't open '/data/blob'"): status=failed in the output.
#   NOVABOX_CPU_MODE=samefs           workaround, labelled novabox-samefs: on the first
#       (untimed warm-up) call, build a minimal rootfs *inside the blob's tmpfs*
#       (<rootfs>/data/nbroot: a copy of the same static busybox, /etc/passwd, and
#       data/blob as a hard link to the very same tmpfs inode) and run novabox with
#       --rootfs <rootfs>/data/nbroot. Same binary bytes, same input pages; only the
#       rootfs path differs. Removed with the tmpfs when the anchor unmounts it.
#
# An extra candidate novabox-true (`novabox run --rm ... /bin/busybox true`, exported
# as run_novabox-true into the anchor's loop) measures novabox's fixed start/stop
# cost in the same rounds, so that the table can give an adjusted ratio like the
# anchor's crun one: (novabox median - novabox-true median) / host median.
#
# Env: ANCHOR_ROUNDS (7), ANCHOR_BLOB_MB (512), ANCHOR_DIR, SHARED_DIR, KEEP_ROOTFS,
#      NOVABOX_CPU_MODE (volume|plain|samefs), NOVABOX_BENCH_OPTS ("--memory 512m --pids-limit 1024 --network none"),
#      WAIT_QUIET (0). sysbench (optional) is run by the anchor for host vs crun only.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || bdie "must run as root"
[ -x "$ANCHORS/cpu-overhead.sh" ] || bdie "no $ANCHORS/cpu-overhead.sh (set SHARED_DIR)"
[ -x "$NOVABOX" ] || bdie "no $NOVABOX"
command -v jq >/dev/null || bdie "missing jq"

MODE=${NOVABOX_CPU_MODE:-volume}
NB_OPTS=${NOVABOX_BENCH_OPTS---memory 512m --pids-limit 1024 --network none}
anchor_run_setup cpu

NBQ=$(printf %q "$NOVABOX")
case $MODE in
  volume)
    # The blob's tmpfs is mounted below the rootfs, which overlayfs (the container's root)
    # does not show: bind it in with -v, as a user would.
    export PROJECT_LABEL=novabox
    export PROJECT_RUN="$NBQ run --rm --name {name} $NB_OPTS --rootfs {rootfs} -v {rootfs}/data:/data {cmd}" ;;
  plain)
    export PROJECT_LABEL=novabox
    export PROJECT_RUN="$NBQ run --rm --name {name} $NB_OPTS --rootfs {rootfs} {cmd}" ;;
  samefs)
    export PROJECT_LABEL=novabox-samefs
    export PROJECT_RUN="[ -x {rootfs}/data/nbroot/bin/busybox ] || bash $(printf %q "$HERE/lib.sh") prep-samefs {rootfs}; $NBQ run --rm --name {name} $NB_OPTS --rootfs {rootfs}/data/nbroot {cmd}" ;;
  *) bdie "NOVABOX_CPU_MODE must be volume, plain or samefs" ;;
esac
export PROJECT_CLEANUP="bash $(printf %q "$HERE/lib.sh") cleanup-root $(printf %q "$NB_ROOT")"
export NB_OPTS NOVABOX
run_novabox-true() {
  # shellcheck disable=SC2086
  "$NOVABOX" run --rm --name "$PREFIX-nbtrue" $NB_OPTS --rootfs "$ROOTFS" /bin/busybox true </dev/null
}
export -f run_novabox-true
export ANCHOR_CANDIDATES=${ANCHOR_CANDIDATES:-host crun crun-true novabox-true}
export KEEP_STATE=1
blog "novabox hook ($MODE): $PROJECT_RUN  (NOVABOX_ROOT=$NB_ROOT)"

busy_watch_start "$TMP/busy"
bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$TMP/apid" "$ANCHORS/cpu-overhead.sh"
arc=$?
busy_watch_stop
ASTATE=/run/anchors/anc-cpu-$(cat "$TMP/apid")
[ -d "$ASTATE" ] || bdie "anchor run failed (rc=$arc): no samples in $ASTATE"

# ---- digest check + table -----------------------------------------------------------
S=$ASTATE/cpu
ref=$(grep -Eo '^[0-9a-f]{64}' "$ASTATE/crun.log" 2>/dev/null | sort -u)
got=$(grep -Eo '^[0-9a-f]{64}' "$ASTATE/project.log" 2>/dev/null | sort -u)
if [ -n "$got" ] && [ "$got" = "$ref" ]; then blog "digest check: $PROJECT_LABEL computed the same sha256 as crun in every run"
else blog "digest check: $PROJECT_LABEL digest '${got:-none}' vs crun '${ref:-none}'"; fi
if [ -s "$ASTATE/project.log" ] && grep -qv '^[0-9a-f]\{64\} ' "$ASTATE/project.log"; then
  blog "$PROJECT_LABEL output (last lines):"; grep -v '^[0-9a-f]\{64\} ' "$ASTATE/project.log" | tail -n 3 | sed 's/^/#   /' >&2
fi
echo
echo "# cpu: sha256sum of a ${ANCHOR_BLOB_MB:-512} MiB tmpfs blob, ms ($(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(busy_note), during the run $(busy_watch_report))"
printf '%-16s %9s %9s %11s\n' candidate median p90 X/host
failed() { grep -q "^$1 " "$S.failed" 2>/dev/null || [ ! -f "$S.$1.run.ms" ]; }
for c in host crun crun-true novabox-true project; do
  lbl=$c; [ "$c" = project ] && lbl=$PROJECT_LABEL
  case " $ANCHOR_CANDIDATES project " in *" $c "*) ;; *) continue ;; esac
  if failed "$c"; then printf '%-16s %9s\n' "$lbl" failed; continue; fi
  read -r med p90 < <(sample_stats "$S.$c.run.ms")
  r=-; case $c in host|*-true) ;; *) r=$(paired "$S.$c.run.ms" "$S.host.run.ms" ratio) ;; esac
  printf '%-16s %9s %9s %11s\n' "$lbl" "$med" "$p90" "$r"
done
adj() {   # adj CAND TRUE-CAND LABEL
  failed "$1" || failed "$2" || failed host || awk -v l="$3" -v c="$(sample_stats "$S.$1.run.ms" | cut -d' ' -f1)" \
    -v t="$(sample_stats "$S.$2.run.ms" | cut -d' ' -f1)" -v h="$(sample_stats "$S.host.run.ms" | cut -d' ' -f1)" \
    'BEGIN { printf "%s/host adjusted (start cost removed): %.3f  ((%.1f - %.1f) / %.1f)\n", l, (c-t)/h, c, t, h }'
}
adj crun crun-true crun
adj project novabox-true "$PROJECT_LABEL"
if failed project; then
  echo "$PROJECT_LABEL: failed ($( [ "$MODE" = plain ] && echo "no bind mount option: the overlay root does not show the tmpfs at /data; see NOVABOX_CPU_MODE=samefs"))"
fi
exit "$arc"
