#!/bin/sh
# Guest-side self-test run by `test/vm/run.sh --check` (busybox sh, as root, in /novabox).
# Checks what the container runtime needs from the VM: pure cgroup v2 with
# controllers, node, overlayfs, mount/pid/uts/ipc/net namespaces, pivot_root,
# veth + bridge. With NOVABOX_VM_CHECK_VITEST=1 it also runs vitest once.
fail=0
ok() { echo "check: ok   $*"; }
bad() { echo "check: FAIL $*"; fail=1; }
now() { read -r up _ </proc/uptime; echo "$up"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== cat /sys/fs/cgroup/cgroup.controllers"
cat /sys/fs/cgroup/cgroup.controllers
echo "== grep cgroup /proc/self/mountinfo"
grep cgroup /proc/self/mountinfo
echo "== node"
node -e "console.log(process.version)"

for c in cpu memory pids io cpuset; do
  grep -qw "$c" /sys/fs/cgroup/cgroup.controllers && ok "cgroup2 controller $c" || bad "cgroup2 controller $c missing"
done
if grep -q ' - cgroup ' /proc/self/mountinfo; then bad "a cgroup v1 hierarchy is mounted"; else ok "no cgroup v1 mounts (pure v2)"; fi

t0=$(now); node -e 0; t1=$(now)
echo "check: info node -e 0 took $(secs "$t0" "$t1")s"

# ---- cgroup v2: child group with limits, a process moved into it
cg=/sys/fs/cgroup/vm-selftest
mkdir "$cg" && echo 16 > "$cg/pids.max" && echo 64M > "$cg/memory.max" && echo "50000 100000" > "$cg/cpu.max" &&
  [ "$(sh -c "echo \$\$ > $cg/cgroup.procs && cat /proc/self/cgroup")" = "0::/vm-selftest" ] &&
  ok "cgroup2 child group with pids/memory/cpu limits" || bad "cgroup2 child group"
rmdir "$cg" 2>/dev/null

# ---- overlay on tmpfs + namespaces + pivot_root, like a container start
d=/tmp/vm-selftest
mkdir -p $d/lower/bin $d/lower/proc $d/lower/old $d/upper $d/work $d/merged
cp /bin/busybox $d/lower/bin/busybox && ln -s busybox $d/lower/bin/sh
echo lower > $d/lower/from-lower
if mount -t overlay overlay -o lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work $d/merged; then
  ok "overlay mount (lower/upper/work on tmpfs)"
else
  bad "overlay mount"
fi
out=$(unshare -m -p -f -u -i -n sh -c "
  set -e
  mount --make-rprivate /
  cd $d/merged
  pivot_root . old
  exec /bin/busybox sh -c '
    set -e
    /bin/busybox mount -t proc proc /proc
    /bin/busybox umount -l /old
    /bin/busybox hostname inner
    echo written > /from-container
    echo pid=\$\$ host=\$(/bin/busybox hostname) lower=\$(/bin/busybox cat /from-lower) mounts=\$(/bin/busybox wc -l < /proc/self/mountinfo) net=\$(/bin/busybox cat /proc/net/dev | /bin/busybox wc -l)
  '
" 2>&1)
echo "container: $out"
case "$out" in
  "pid=1 host=inner lower=lower mounts=2 net=3") ok "unshare -m -p -f -u -i -n + pivot_root into the overlay" ;;
  *) bad "namespaces + pivot_root" ;;
esac
[ "$(cat $d/upper/from-container 2>/dev/null)" = written ] && ok "container write landed in the overlay upper dir" || bad "overlay upper dir"
[ "$(hostname)" = novabox-vm ] && ok "uts namespace left the VM hostname alone" || bad "hostname leaked: $(hostname)"
umount $d/merged 2>/dev/null; rm -rf $d

# ---- veth + bridge + a network namespace
# busybox ip has no "peer name": the kernel names the peer veth<N>; rename it
if ip link add nbx-selftest0 type bridge && ip link add nbx-st0 type veth &&
   peer=$(ip -o link | sed -n 's/^[0-9]*: \([^@]*\)@nbx-st0:.*/\1/p') && [ -n "$peer" ] &&
   ip link set "$peer" name nbx-st1; then
  ip link set nbx-st0 master nbx-selftest0 && ip addr add 10.213.0.1/24 dev nbx-selftest0 &&
    ip link set nbx-selftest0 up && ip link set nbx-st0 up
  unshare -n sh -c 'sleep 20' & pid=$!
  sleep 0.5
  if ip link set nbx-st1 netns "$pid" &&
     nsenter -t "$pid" -n sh -c 'ip link set lo up && ip link set nbx-st1 up && ip addr add 10.213.0.2/24 dev nbx-st1 && ping -c1 -W5 10.213.0.1 >/dev/null'; then
    ok "veth pair into a net namespace, bridged, ping across"
  else
    bad "veth/bridge/netns ping"
  fi
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  ip link del nbx-st0 2>/dev/null; ip link del nbx-selftest0 2>/dev/null
else
  bad "ip link add bridge/veth"
fi
modprobe nf_tables && ok "modprobe nf_tables (shipped, not preloaded)" || bad "modprobe nf_tables"

# ---- optional: vitest inside the guest
if [ "${NOVABOX_VM_CHECK_VITEST:-0}" = 1 ]; then
  if [ -x node_modules/.bin/vitest ]; then
    t0=$(now)
    if node_modules/.bin/vitest run --config test/vm/selftest/vitest.config.mjs; then
      ok "vitest run ($(secs "$t0" "$(now)")s)"
    else
      bad "vitest run"
    fi
  else
    bad "node_modules/.bin/vitest missing"
  fi
fi

[ $fail = 0 ] && echo "check: all passed" || echo "check: FAILED"
exit $fail
