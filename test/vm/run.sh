#!/usr/bin/env bash
# Run a command inside a throwaway QEMU VM with a pure cgroup v2 kernel.
#
#   test/vm/run.sh [--timeout SECONDS] [--mem MiB] [--smp N] [--drive NAME=FILE]... -- COMMAND [ARGS...]
#   test/vm/run.sh --check [--vitest]   # self-test: cgroup2, node, overlay, namespaces, pivot_root, veth
#
# The command runs as root in /novabox (a fresh copy of the project tree, .git
# excluded) inside the guest, with stdout+stderr streamed here. Exit status is
# the command's, 99 when the guest never reported one (crash, timeout).
# See test/vm/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=${NOVABOX_VM_TIMEOUT:-900}
MEM=${MEM:-${NOVABOX_VM_MEM:-3072}}
SMP=${NOVABOX_VM_SMP:-2}
WORK=${NOVABOX_VM_DIR:-/var/tmp/novabox-vm}
CHECK=0
# files handed to the guest as read-only virtio disks: NAME=FILE, space-separated
read -r -a DRIVES <<<"${NOVABOX_VM_DRIVES:-}"
BASE_VERSION=5   # bump when the layout of the base archive changes

die() { echo "vm: $*" >&2; exit 99; }
usage() { sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --mem) MEM=${2:?}; shift 2 ;;
    --mem=*) MEM=${1#*=}; shift ;;
    --smp) SMP=${2:?}; shift 2 ;;
    --smp=*) SMP=${1#*=}; shift ;;
    --check) CHECK=1; shift ;;
    --vitest) export NOVABOX_VM_CHECK_VITEST=1; shift ;;   # with --check: also run vitest once
    --drive) DRIVES+=("${2:?}"); shift 2 ;;
    --drive=*) DRIVES+=("${1#*=}"); shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) break ;;
  esac
done
if ((CHECK)); then
  (($# == 0)) || die "--check takes no command"
  set -- sh /novabox-vm/selftest.sh
fi
(($#)) || usage
[[ $TIMEOUT =~ ^[0-9]+$ && $MEM =~ ^[0-9]+$ && $SMP =~ ^[0-9]+$ ]] || die "--timeout, --mem and --smp take whole numbers"

# --drive NAME=FILE: the guest finds FILE's bytes at /run/novabox-vm/drives/NAME (a block
# device, read-only) and its size in bytes in NOVABOX_VM_DRIVE_<NAME>_SIZE (a block device
# ends on a 512-byte boundary; the file need not)
DRIVE_ARGS=()
for d in "${DRIVES[@]}"; do
  name=${d%%=*} file=${d#*=}
  [[ $d == *=* && $name =~ ^[a-z][a-z0-9_]{0,19}$ ]] || die "--drive takes NAME=FILE, NAME in [a-z0-9_] (at most 20): $d"
  [[ -f $file && -r $file ]] || die "--drive $name: $file is not a readable file"
  DRIVE_ARGS+=(-drive "file=$(readlink -f "$file"),format=raw,if=none,id=drive_$name,readonly=on,cache=unsafe"
    -device "virtio-blk-pci,drive=drive_$name,serial=$name")
  export "NOVABOX_VM_DRIVE_${name^^}_SIZE=$(stat -L -c %s "$file")"
done

PROJECT_DIR=${PROJECT_DIR:-$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))}
PROJECT_DIR=$(cd "$PROJECT_DIR" && pwd -P)

# ---- host tools -------------------------------------------------------------
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"
BUSYBOX=${NOVABOX_VM_BUSYBOX:-/bin/busybox}
# ldd (libc-bin, always there; `file` is not on a minimal Debian) fails on a static executable
[[ -x $BUSYBOX ]] && ! ldd "$BUSYBOX" >/dev/null 2>&1 || die "$BUSYBOX is not a static busybox (apt-get install busybox-static)"
NODE=$(readlink -f "${NOVABOX_VM_NODE:-$(command -v node)}") || die "node not found"
# newest installed cloud kernel (pure cgroup v2 has nothing to do with the flavour,
# but -cloud boots fastest: few drivers)
KERNEL=${NOVABOX_VM_KERNEL:-$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n1)}
[[ -n $KERNEL && -r $KERNEL ]] || die "no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)"
KVER=${KERNEL##*/vmlinuz-}
MODDIR=/lib/modules/$KVER
[[ -r $MODDIR/modules.dep ]] || die "$MODDIR/modules.dep missing"

# Modules loaded at boot, and further ones only shipped (modprobe-able in the guest).
LOAD_MODULES=${NOVABOX_VM_MODULES:-overlay veth bridge virtio_pci virtio_blk}
SHIP_MODULES="tun loop nf_tables nft_chain_nat nft_masq nft_ct nft_compat nft_fib_inet nf_nat nf_conntrack
  xt_MASQUERADE xt_conntrack xt_addrtype iptable_nat iptable_filter ip6table_nat ip6table_filter"

mkdir -p "$WORK"

# module name -> paths (the module and its dependencies) from modules.dep
module_closure() {
  awk -v want="$*" '
    BEGIN { n = split(want, w, /[ \n\t]+/); for (i = 1; i <= n; i++) if (w[i] != "") need[w[i]] = 1 }
    {
      key = $1; sub(/:$/, "", key); name = key; sub(/.*\//, "", name); sub(/\.ko(\.[a-z]+)?$/, "", name)
      gsub(/-/, "_", name)
      if (name in need) { found[name] = 1; print key; for (i = 2; i <= NF; i++) print $i }
    }
    END { for (m in need) if (!(m in found)) print "missing:" m > "/dev/stderr" }
  ' "$MODDIR/modules.dep" | sort -u
}

# libraries the dynamic executables we ship need: node, and the ELF files in the tree
elf_deps() {
  local f
  for f in "$@"; do
    # static executables make ldd fail: not an error
    { ldd "$f" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
  done | sort -u
}
NPM_DIR=
if [[ ${NOVABOX_VM_NPM:-1} = 1 ]] && NPM_CLI=$(readlink -f "$(command -v npm)" 2>/dev/null) &&
   [[ $NPM_CLI == */npm/bin/npm-cli.js ]]; then
  NPM_DIR=${NPM_CLI%/bin/npm-cli.js}
fi
mapfile -t PROJECT_ELFS < <(find "$PROJECT_DIR" -path "$PROJECT_DIR/.git" -prune -o -type f \
  \( -name '*.node' -o -name '*.so' -o -name '*.so.*' -o -path '*/native-bindings/build/*' \) -print 2>/dev/null |
  grep -v '/musl[_-]' || true)
# The host tools the integration tests use, shipped when the host has them (a test that
# needs a missing one skips and names it): nft (NAT), umoci and skopeo (OCI fixtures),
# GNU tar (novabox extracts layers with it), zstd, xz, bzip2, mke2fs (the guest's ext4
# disk, below), criu (live migration: Debian 12's CRIU passes "criu check" on the guest's
# 6.1 kernel where it may fail on the host's), podman and conmon (novabox-oci under Podman: its
# CNI backend with --network none needs no other helper; ~39 MB of the base archive), containerd,
# ctr and containerd-shim-runc-v2 (novabox-oci under containerd; ~83 MB) with util-linux's script
# (a terminal for ctr run -t) and lsns (the owner of a namespace: oci-spec.test.ts), and Debian's
# python3 with its standard library (hostile tar fixtures).
# They go to /usr/local/bin, before busybox's applets on PATH. NOVABOX_VM_TOOLS='' ships none;
# NOVABOX_VM_EXTRA_TOOLS adds to them (test/oci-validation/guest.sh: bash, runc, crun).
is_elf() { [[ $(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; }
TOOLS=()
for t in ${NOVABOX_VM_TOOLS-nft umoci skopeo tar zstd xz bzip2 mke2fs criu podman conmon containerd ctr containerd-shim-runc-v2 script lsns} ${NOVABOX_VM_EXTRA_TOOLS:-}; do
  p=$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$t" 2>/dev/null) && p=$(readlink -f "$p") && is_elf "$p" && TOOLS+=("$t=$p")
done
# criu saves and restores a network namespace's addresses and routes with iproute2's ip
# (busybox's has no "ip addr save"): shipped as criu-ip, found through CR_IP_TOOL (init.sh),
# so that busybox's ip stays the guest's ip
if [[ " ${TOOLS[*]%%=*} " == *' criu '* ]] && p=$(readlink -f /usr/bin/ip 2>/dev/null || readlink -f /sbin/ip 2>/dev/null) && is_elf "$p"; then
  TOOLS+=("criu-ip=$p")
fi
# nft needs nf_tables at hand: the guest has no modules.alias for the kernel to load it on demand
# (nft_nat and nft_fib_ipv4: published ports' dnat and `fib daddr type local`)
if [[ " ${TOOLS[*]%%=*} " == *' nft '* ]]; then LOAD_MODULES+=" nf_tables nft_chain_nat nft_masq nft_ct nft_nat nft_fib nft_fib_ipv4"; fi
# criu check wants tun and nf_tables loaded (it probes both), a dump the sock_diag modules
if [[ " ${TOOLS[*]%%=*} " == *' criu '* ]]; then LOAD_MODULES+=" tun nf_tables unix_diag netlink_diag af_packet_diag inet_diag tcp_diag udp_diag nf_conntrack_netlink"; fi
# /tmp and /var/lib/novabox on ext4 over a loop device (init.sh): tmpfs before Linux 6.3
# cannot be idmapped (containers' own user namespaces) nor, before 6.6, hold user.* xattrs
if [[ " ${TOOLS[*]%%=*} " == *' mke2fs '* ]]; then LOAD_MODULES+=" loop"; fi
PYTHON= PYLIB=
if [[ ${NOVABOX_VM_TOOLS-python3} == *python3* ]] && p=$(readlink -f /usr/bin/python3 2>/dev/null) && is_elf "$p" && [[ -d /usr/lib/${p##*/} ]]; then
  PYTHON=$p PYLIB=/usr/lib/${p##*/}
fi
mapfile -t PYLIB_ELFS < <([[ -n $PYLIB ]] && find "$PYLIB/lib-dynload" -name '*.so' 2>/dev/null)
mapfile -t LIBS < <(elf_deps "$NODE" "${PROJECT_ELFS[@]}" "${TOOLS[@]#*=}" ${PYTHON:+"$PYTHON"} "${PYLIB_ELFS[@]}")
mapfile -t KOS < <(module_closure $LOAD_MODULES $SHIP_MODULES 2>/dev/null)
# (no `printf | grep -q`: grep's early exit makes printf's SIGPIPE fail the pipeline)
[[ " ${LIBS[*]} " == *'/libc.so.6 '* ]] || die "could not list the libraries of $NODE"
for m in $LOAD_MODULES; do
  printf '%s\n' "${KOS[@]}" | grep "/${m//_/[-_]}\.ko" >/dev/null || die "module $m not found in $MODDIR/modules.dep"
done

# ---- base archive (cached): busybox, node + libs, modules, /etc, init ----------
manifest() {
  echo "v$BASE_VERSION $KVER"
  stat -L -c '%n %s %Y' "$NODE" "$BUSYBOX" "${LIBS[@]}" ${NPM_DIR:+"$NPM_DIR/package.json"}
  printf '%s\n' "${KOS[@]}"
  echo "load: $LOAD_MODULES"
  echo "tools: ${TOOLS[*]} python: $PYTHON"
  [[ ${#TOOLS[@]} -eq 0 ]] || stat -L -c '%n %s %Y' "${TOOLS[@]#*=}"
  [[ -z $PYTHON ]] || stat -L -c '%n %s %Y' "$PYTHON"
  sha256sum "$HERE/init.sh" "${BASH_SOURCE[0]}"
}
KEY=$(manifest | sha256sum | cut -c1-16)
BASE=$WORK/base-$KEY.cpio

build_base() {
  local st=$WORK/stage-$KEY.$$ a l
  rm -rf "$st"; mkdir -p "$st"
  (
    cd "$st"
    mkdir -p bin sbin usr/bin usr/sbin usr/local/bin lib/x86_64-linux-gnu lib64 etc root tmp proc sys dev run \
      var/tmp var/lib/novabox novabox-vm "lib/modules/$KVER"
    chmod 700 root; chmod 1777 tmp var/tmp
    cp "$BUSYBOX" bin/busybox
    # applet links, relative so stage 1 can run them from the new root while moving
    while read -r a; do
      [[ $a == bin/busybox || -e $a || -L $a ]] && continue
      case "$a" in
        bin/*) ln -s busybox "$a" ;;
        sbin/*) ln -s ../bin/busybox "$a" ;;
        usr/*/*) ln -s ../../bin/busybox "$a" ;;
      esac
    done < <("$BUSYBOX" --list-full)
    cp "$NODE" usr/bin/node; ln -sf ../usr/bin/node bin/node
    # npm + npx from the host's node install, so `npx vitest run` / `npm test` work
    if [[ -n $NPM_DIR ]]; then
      mkdir -p usr/lib/node_modules
      cp -a "$NPM_DIR" usr/lib/node_modules/npm
      ln -s ../lib/node_modules/npm/bin/npm-cli.js usr/bin/npm
      ln -s ../lib/node_modules/npm/bin/npx-cli.js usr/bin/npx
    fi
    for t in "${TOOLS[@]}"; do cp -L "${t#*=}" "usr/local/bin/${t%%=*}"; done
    if [[ -d /etc/containers ]]; then cp -a /etc/containers etc/containers; fi   # skopeo's policy.json
    if [[ -n $PYTHON ]]; then
      cp -L "$PYTHON" "usr/bin/${PYTHON##*/}"; ln -s "${PYTHON##*/}" usr/bin/python3
      mkdir -p usr/lib
      # the standard library without its tests, IDLE, tkinter and the bundled wheels
      (cd /usr/lib && tar -cf - --exclude="${PYLIB##*/}/test" --exclude="${PYLIB##*/}/idlelib" --exclude="${PYLIB##*/}/tkinter" \
        --exclude="${PYLIB##*/}/ensurepip" --exclude="${PYLIB##*/}/lib2to3" "${PYLIB##*/}") | tar -xf - -C usr/lib
    fi
    for l in "${LIBS[@]}"; do
      case "$l" in
        */ld-linux-x86-64.so.2) cp -L "$l" lib64/ld-linux-x86-64.so.2; ln -sf ../../lib64/ld-linux-x86-64.so.2 lib/x86_64-linux-gnu/ ;;
        *) cp -L "$l" "lib/x86_64-linux-gnu/${l##*/}" ;;
      esac
    done
    for a in "${KOS[@]}"; do mkdir -p "lib/modules/$KVER/${a%/*}"; cp "$MODDIR/$a" "lib/modules/$KVER/$a"; done
    # the subset of modules.dep for what we ship, so busybox modprobe resolves dependencies
    awk -v list="${KOS[*]}" 'BEGIN { n = split(list, k, " "); for (i = 1; i <= n; i++) have[k[i]] = 1 }
      { key = $1; sub(/:$/, "", key); if (key in have) print }' "$MODDIR/modules.dep" > "lib/modules/$KVER/modules.dep"
    echo "$LOAD_MODULES" > "lib/modules/$KVER/novabox-vm.load"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > etc/passwd
    printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
    printf '127.0.0.1 localhost novabox-vm\n::1 localhost ip6-localhost\n' > etc/hosts
    printf 'passwd: files\ngroup: files\nhosts: files\n' > etc/nsswitch.conf
    : > etc/fstab
    ln -s /proc/self/mounts etc/mtab
    cp "$HERE/init.sh" init; chmod 755 init
    mknod -m 600 dev/console c 5 1 2>/dev/null || true   # init copes without it
    find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > "$WORK/.base-$KEY.$$"
  )
  mv -f "$WORK/.base-$KEY.$$" "$BASE"
  rm -rf "$st"
  # keep the two newest cached archives (a run still reading an older one has it open)
  ls -t "$WORK"/base-*.cpio 2>/dev/null | tail -n +3 | xargs -r rm -f
}

T0=$(date +%s.%N)
# run dirs left behind by runs that were killed -9
find "$WORK" -maxdepth 1 -name 'run.*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
if [[ ! -s $BASE ]]; then
  exec 9>"$WORK/.lock"
  flock 9
  [[ -s $BASE ]] || { echo "vm: building base initramfs $BASE" >&2; build_base; }
  flock -u 9
fi

# ---- per-run archive: the project tree + the command ---------------------------
RUN=$(mktemp -d "$WORK/run.XXXXXX")
cleanup() { rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

NONCE=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
SRC=${PROJECT_DIR##*/}
# the archive stores the tree as <basename>/...; stage 1 renames it to /novabox
case "$SRC" in
  bin|sbin|usr|lib|lib64|etc|root|tmp|proc|sys|dev|run|var|init|newroot|novabox-vm|"")
    die "project dir basename '$SRC' collides with the guest's own dirs: set PROJECT_DIR to a differently named path" ;;
esac
squote() { local s=$1; printf "'%s'" "${s//\'/\'\\\'\'}"; }
mkdir -p "$RUN/cmd/novabox-vm"
{
  echo "NOVABOX_VM_SRC=$(squote "$SRC")"
  echo "NOVABOX_VM_RUN=$NONCE"
  # NOVABOX_* (including NOVABOX_VM_TTY etc. for init.sh), VITEST*, CI, DEBUG
  # and NODE_OPTIONS go into the guest; nothing else of the host environment does
  for k in $(compgen -e); do
    case "$k" in NOVABOX_*|VITEST*|CI|DEBUG|NODE_OPTIONS) echo "export $k=$(squote "${!k}")" ;; esac
  done
} > "$RUN/cmd/novabox-vm/env"
{
  printf 'exec'
  for a in "$@"; do printf ' %s' "$(squote "$a")"; done
  printf '\n'
} > "$RUN/cmd/novabox-vm/cmd.sh"
cp "$HERE/selftest.sh" "$RUN/cmd/novabox-vm/selftest.sh"
(cd "$RUN/cmd" && find novabox-vm | cpio -o -H newc -R 0:0 --quiet) > "$RUN/cmd.cpio"
# Build-time-only parts of node_modules, left out to cut ~55 MB (~1.5 s of boot);
# NOVABOX_VM_PRUNE='' ships everything. Paths are relative to the project dir.
PRUNE=${NOVABOX_VM_PRUNE-node_modules/@typescript node_modules/typescript node_modules/@types
  node_modules/better-sqlite3/deps node_modules/better-sqlite3/src node_modules/better-sqlite3/build/Release/obj
  node_modules/better-sqlite3/build/Release/obj.target node_modules/.cache node_modules/.vite}
prune_args=(-path "$SRC/.git")
for p in $PRUNE; do prune_args+=(-o -path "$SRC/${p%/}"); done
(
  cd "$PROJECT_DIR/.."
  find "$SRC" \( "${prune_args[@]}" \) -prune -o -print0 | cpio -o -0 -H newc -R 0:0 --quiet
) > "$RUN/project.cpio"
PROJ_MB=$(($(stat -c %s "$RUN/project.cpio") / 1048576))
cat "$BASE" "$RUN/project.cpio" "$RUN/cmd.cpio" > "$RUN/initrd.cpio"
rm -f "$RUN/project.cpio"
SIZE_MB=$(($(stat -c %s "$RUN/initrd.cpio") / 1048576))

# ---- boot --------------------------------------------------------------------
# No usable KVM here (/dev/kvm exists but a KVM guest hangs in early boot): pure TCG.
# Multi-threaded TCG gives each vCPU a host thread.
ACCEL=${NOVABOX_VM_ACCEL:-tcg,thread=multi}
MACHINE=${NOVABOX_VM_MACHINE:-q35}   # microvm boots 0.5 s faster but has no HPET/PM timer: under
                                     # TCG its TSC calibration against the PIT sometimes fails and the boot hangs
# ERMS/FSRM make the kernel copy with `rep movsb`, which TCG runs a byte at a time:
# without them unpacking and moving the initramfs takes ~2.5 s less.
CPU=${NOVABOX_VM_CPU:-max,erms=off,fsrm=off}
T1=$(date +%s.%N)
BOOTED= STATUS= BOOT_UPTIME= DONE_UPTIME=
shopt -s lastpipe   # the reading loop runs in this shell, so its variables survive
set +e
timeout --foreground -k 10 "$TIMEOUT" "$QEMU" \
  -M "$MACHINE" -accel "$ACCEL" -cpu "$CPU" -smp "$SMP" -m "$MEM" \
  -nodefaults -no-user-config -nographic -no-reboot -serial stdio -monitor none \
  -fw_cfg name=etc/sercon-port,string=0 \
  -kernel "$KERNEL" -initrd "$RUN/initrd.cpio" "${DRIVE_ARGS[@]}" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic mitigations=off random.trust_cpu=on ${NOVABOX_VM_APPEND:-}" \
  </dev/null 2>&1 |
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    # control lines from init.sh (BIOS/kernel noise may precede them on the line)
    if [[ $line == *NOVABOX_VM_* ]]; then
      ctl=NOVABOX_VM_${line##*NOVABOX_VM_}
      case "$ctl" in
        "NOVABOX_VM_BOOTED uptime="*) BOOTED=$(date +%s.%N); BOOT_UPTIME=${ctl#*uptime=}; continue ;;
        "NOVABOX_VM_DONE uptime="*) DONE_UPTIME=${ctl#*uptime=}; continue ;;
        "NOVABOX_VM_EXIT="*" run=$NONCE") STATUS=${ctl#NOVABOX_VM_EXIT=}; STATUS=${STATUS%% *}; continue ;;
      esac
    fi
    # SeaBIOS prints nothing with sercon-port=0, but qemu warns about the name
    [[ $line == *'externally provided fw_cfg item names'* ]] && continue
    # after the exit marker only the kernel's power-down message follows
    [[ -n $STATUS && $line == *'reboot: Power down'* ]] && continue
    printf '%s\n' "$line"
  done
QRC=${PIPESTATUS[0]}
set -e
T2=$(date +%s.%N)

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
prep=$(secs "$T0" "$T1")
if [[ -n $BOOTED ]]; then
  run=$( [[ -n $DONE_UPTIME ]] && secs "$BOOT_UPTIME" "$DONE_UPTIME" || echo '?')
  echo "vm: initramfs ${SIZE_MB} MiB (project ${PROJ_MB}), prepare ${prep}s, boot $(secs "$T1" "$BOOTED")s (guest uptime ${BOOT_UPTIME}s), command ${run}s, total $(secs "$T0" "$T2")s" >&2
else
  echo "vm: initramfs ${SIZE_MB} MiB (project ${PROJ_MB}), prepare ${prep}s, never booted to the command, total $(secs "$T0" "$T2")s" >&2
fi
if [[ -z $STATUS ]]; then
  if ((QRC == 124 || QRC == 137)); then
    echo "vm: timed out after ${TIMEOUT}s, qemu killed (no NOVABOX_VM_EXIT marker)" >&2
  else
    echo "vm: no NOVABOX_VM_EXIT marker from the guest (qemu exit status $QRC)" >&2
  fi
  exit 99
fi
exit "$STATUS"
