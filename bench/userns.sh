#!/bin/bash
# bench/userns.sh - what a container's own user namespace costs at start, in one
# round-robin run with the anchors (bench/start-latency.sh underneath):
#
#   project      novabox run --rm ... --userns auto  (its own range, idmapped layers)
#   nb-host      novabox run --rm ... --userns host  (root inside is host root)
#   crun         crun run, no user namespace (the anchor)
#   crun-userns  crun run with a user namespace (uidMappings/gidMappings, 65,536 ids) and
#                one idmapped bind mount (the rootfs at /data, "idmap" mount option);
#                crun's rootfs itself stays a plain bind (its files read as nobody)
#   node-e0      node -e 0 (Node's floor)
#
#   ROUNDS=40 bench/userns.sh        (as root)
#
# Prints start-latency.sh's table, then "novabox above nb-host" (what the user namespace
# costs novabox: the issue's budget is 1 ms), "crun-userns above crun" (what it costs crun)
# and "novabox above node-e0", as medians of paired differences.
HERE=$(cd "$(dirname "$0")" && pwd)
NOVABOX=${NOVABOX:-$HERE/../bin/novabox}
OPTS="--memory 512m --pids-limit 1024 --network none"
export NOVABOX_BENCH_OPTS="$OPTS --userns auto"
# shellcheck disable=SC2016
run_nb-host() {
  "$NB_BIN" run --rm --name "nbh-$PREFIX-$1" $NB_HOST_OPTS --userns host --rootfs "$ROOTFS" /bin/true </dev/null
}
pre_crun-userns() {
  [ -f "$STATE/b-crun-userns/config.json" ] && return 0
  mkdir -p "$STATE/b-crun-userns"
  jq --arg root "$ROOTFS" --arg cg "/$PREFIX/crunu" '
    .root.path = $root | .process.args = ["/bin/true"] | .linux.cgroupsPath = $cg
    | .linux.namespaces += [{"type": "user"}]
    | .linux.uidMappings = [{"containerID": 0, "hostID": 1900000000, "size": 65536}]
    | .linux.gidMappings = [{"containerID": 0, "hostID": 1900000000, "size": 65536}]
    | .mounts += [{"destination": "/data", "type": "bind", "source": $root, "options": ["rbind", "idmap"]}]
  ' "$BUNDLE/config.json" >"$STATE/b-crun-userns/config.json"
}
run_crun-userns() {
  crun --root "$STATE/crun" run --bundle "$STATE/b-crun-userns" "$PREFIX-crunu" </dev/null
}
export NB_BIN=$NOVABOX NB_HOST_OPTS=$OPTS
export -f run_nb-host pre_crun-userns run_crun-userns
export ANCHOR_CANDIDATES=${ANCHOR_CANDIDATES:-crun crun-userns nb-host node-e0}
export DIFF_AGAINST=${DIFF_AGAINST:-project/nb-host crun-userns/crun project/node-e0 nb-host/node-e0}
exec "$HERE/start-latency.sh" "$@"
