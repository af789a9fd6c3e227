#!/usr/bin/env bash
# The OCI runtime validation suite (opencontainers/runtime-tools `validation/`) against
# runc, crun and novabox-oci in one run, as root, offline.
#
#   RUNTIME_TOOLS_SRC=/path/to/runtime-tools test/oci-validation/run.sh [test-name ...]
#
# RUNTIME_TOOLS_SRC is a local runtime-tools source tree (with its vendor/ directory and
# rootfs-<arch>.tar.gz). Nothing is downloaded: the suite is built with the local Go,
# -mod=vendor and GOPROXY=off. Debian bookworm's Go 1.19 builds runtime-tools up to commit
# 260e151 (March 2025); later commits ask for Go 1.21 (their vendor/ needs `slices`).
# Not part of `npm test`: CI has no runtime-tools source (Debian's
# golang-github-opencontainers-runtime-tools-dev ships neither validation/ nor runtimetest).
#
# Environment:
#   RUNTIMES   runtimes to run, default "runc crun novabox-oci" (names on PATH or paths;
#              novabox-oci defaults to this worktree's bin/novabox-oci)
#   OUT        where the TAP logs go (<test>.tap, .stderr and the exit status .rc), one
#              directory per runtime (default /tmp/novabox-oci-validation)
#   WORK       build directory (default $OUT/build); the source tree is copied there, not written
#   TEST_TIMEOUT  seconds per test file (default 120)
#   PACK       build only, then write the built suite (runtimetest, the rootfs, each test
#              program) to this tar file and stop: what test/oci-validation/guest.sh hands
#              the QEMU guest, which has no Go
#   PREBUILT   run a suite PACK wrote, unpacked in this directory: no Go, no source tree
# Arguments: test names (validation/<name>), default all.
# Prints per runtime: test files passed / failed, assertions ok / not ok / skipped, and the
# table of files whose result differs between runtimes.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
src="${RUNTIME_TOOLS_SRC:-}"
if [ "$(id -u)" != 0 ] && [ -z "${PACK:-}" ]; then
  echo "run.sh: the validation suite runs containers and must run as root." >&2
  exit 2
fi
OUT="${OUT:-/tmp/novabox-oci-validation}"
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
RUNTIMES="${RUNTIMES:-runc crun novabox-oci}"
tests=()
if [ -n "${PREBUILT:-}" ]; then
  [ -x "$PREBUILT/runtimetest" ] && [ -d "$PREBUILT/validation" ] || {
    echo "run.sh: PREBUILT=$PREBUILT holds no built suite (runtimetest, validation/): unpack what PACK wrote there." >&2
    exit 2
  }
  cd "$PREBUILT"
  for f in validation/*/*.t; do
    name="$(basename "$(dirname "$f")")"
    if [ $# -gt 0 ]; then
      keep=
      for a in "$@"; do [ "$a" = "$name" ] && keep=1; done
      [ -n "$keep" ] || continue
    fi
    tests+=("$name")
  done
  mkdir -p "$OUT"
else
if [ -z "$src" ] || [ ! -d "$src/validation" ] || [ ! -d "$src/vendor" ]; then
  echo "run.sh: RUNTIME_TOOLS_SRC must name a runtime-tools source tree with validation/ and vendor/." >&2
  exit 2
fi
command -v go >/dev/null || { echo "run.sh: no go on PATH (Debian: apt-get install golang-go)." >&2; exit 2; }
WORK="${WORK:-$OUT/build}"
arch="$(go env GOARCH)"

# the Go the tree asks for against the one here, in one sentence rather than a compile error
want="$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' "$src/go.mod")"
have="$(go env GOVERSION | sed -n 's/^go\([0-9]*\.[0-9]*\).*/\1/p')"
if [ -n "$want" ] && [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
  echo "run.sh: $src asks for Go $want and this Go is $have; use a runtime-tools commit whose go.mod says go $have or older (260e151 for Go 1.19)." >&2
  exit 2
fi

mkdir -p "$OUT" "$WORK"
rm -rf "$WORK/src"
cp -a "$src" "$WORK/src"
cd "$WORK/src"
export GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on GOTOOLCHAIN=local GOSUMDB=off \
  GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath"
if [ ! -f "rootfs-$arch.tar.gz" ]; then
  # the tree's own rootfs is a busybox; a tree without it gets one from busybox-static
  bb="$(command -v busybox || true)"
  if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q 'statically linked'; then
    echo "run.sh: $src has no rootfs-$arch.tar.gz and there is no static busybox to make one (apt-get install busybox-static)." >&2
    exit 2
  fi
  r="$WORK/rootfs"
  rm -rf "$r" && mkdir -p "$r/bin" "$r/dev" "$r/etc" "$r/proc" "$r/sys" "$r/tmp" "$r/root"
  cp "$bb" "$r/bin/busybox"
  for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\n' >"$r/etc/group"
  tar -czf "rootfs-$arch.tar.gz" -C "$r" .
fi
echo "building runtimetest and the validation tests (offline, $(go env GOVERSION))" >&2
go build -tags "netgo osusergo" -ldflags "-extldflags -static" -o runtimetest ./cmd/runtimetest
mapfile -t all < <(find validation -mindepth 2 -maxdepth 2 -name '*.go' | grep -v '^validation/util/' | sort)
for f in "${all[@]}"; do
  name="$(basename "$(dirname "$f")")"
  if [ $# -gt 0 ]; then
    keep=
    for a in "$@"; do [ "$a" = "$name" ] && keep=1; done
    [ -n "$keep" ] || continue
  fi
  go build -o "${f%.go}.t" "$f"
  tests+=("$name")
done
if [ -n "${PACK:-}" ]; then
  progs=()
  for t in "${tests[@]}"; do progs+=("validation/$t/$t.t"); done
  tar -cf "$PACK" runtimetest "rootfs-$arch.tar.gz" "${progs[@]}"
  echo "run.sh: the built suite is in $PACK (${#tests[@]} tests)" >&2
  exit 0
fi
fi

resolve() {
  case "$1" in
    novabox-oci) [ -x "$here/bin/novabox-oci" ] && { echo "$here/bin/novabox-oci"; return; } ;;
  esac
  if [ -x "$1" ]; then echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; else command -v "$1"; fi
}

declare -A result
for rt in $RUNTIMES; do
  path="$(resolve "$rt")" || { echo "run.sh: runtime $rt not found." >&2; exit 2; }
  tag="$(basename "$rt")"
  mkdir -p "$OUT/$tag"
  for t in "${tests[@]}"; do
    log="$OUT/$tag/$t.tap"
    set +e
    RUNTIME="$path" timeout -k 5 "$TEST_TIMEOUT" "./validation/$t/$t.t" >"$log" 2>"$OUT/$tag/$t.stderr" </dev/null
    rc=$?
    set -e
    echo "$rc" >"$OUT/$tag/$t.rc"
    # a file passes when it exits 0 with no top-level "not ok" (the *_fail tests print no
    # TAP at all when the runtime refuses their config, as it must; util.Fatal exits 1)
    if [ $rc = 0 ] && ! grep -q '^not ok' "$log"; then
      result[$tag/$t]=pass
    elif [ $rc = 124 ] || [ $rc = 137 ]; then
      result[$tag/$t]=timeout
    else
      result[$tag/$t]=fail
    fi
    echo "$tag $t ${result[$tag/$t]}" >&2
  done
done

echo
printf '%-14s %8s %8s %8s %8s %8s\n' runtime files-ok files-ng asserts-ok not-ok skipped
for rt in $RUNTIMES; do
  tag="$(basename "$rt")"
  pass=0 ng=0
  for t in "${tests[@]}"; do
    if [ "${result[$tag/$t]}" = pass ]; then pass=$((pass + 1)); else ng=$((ng + 1)); fi
  done
  ok="$(cat "$OUT/$tag/"*.tap | grep -E '^ok [0-9]+' | grep -vc '# SKIP' || true)"
  skip="$(cat "$OUT/$tag/"*.tap | grep -cE '^ok [0-9]+.*# SKIP' || true)"
  nok="$(cat "$OUT/$tag/"*.tap | grep -cE '^not ok' || true)"
  printf '%-14s %8s %8s %8s %8s %8s\n' "$tag" "$pass" "$ng" "$ok" "$nok" "$skip"
done
echo
echo "files whose result is not the same for every runtime (or that fail everywhere):"
for t in "${tests[@]}"; do
  line="" same=1 first="" anyfail=
  for rt in $RUNTIMES; do
    tag="$(basename "$rt")"
    r="${result[$tag/$t]}"
    [ -z "$first" ] && first="$r"
    [ "$r" = "$first" ] || same=
    [ "$r" = pass ] || anyfail=1
    line+="$(printf ' %-12s' "$tag=$r")"
  done
  if [ -z "$same" ] || [ -n "$anyfail" ]; then printf '  %-40s%s\n' "$t" "$line"; fi
done
echo "TAP logs: $OUT/<runtime>/<test>.tap"
