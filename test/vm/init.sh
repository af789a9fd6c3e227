#!/bin/sh
# Guest init for test/vm/run.sh (runs under busybox ash as PID 1).
#
# Stage 1 (initramfs rootfs): pivot_root(2) refuses to work when the current
# root is the initramfs rootfs (EINVAL), and the containers under test use
# pivot_root, so move everything into a fresh tmpfs and switch_root into it.
# Stage 2 (tmpfs root): mount the usual filesystems, a pure cgroup v2
# hierarchy, load the container kernel modules, run /novabox-vm/cmd.sh in
# /novabox and print the exit-code marker, then power off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# novabox_debug=1 on the kernel command line (NOVABOX_VM_APPEND) times the stages
t() { [ -n "$novabox_debug" ] && { read -r up _ </proc/uptime; echo "init: $up $*"; }; return 0; }

if [ "$NOVABOX_STAGE" != 2 ]; then
  die1() { echo "init: $*"; busybox poweroff -f; }
  mount -t devtmpfs devtmpfs /dev 2>/dev/null
  # if the kernel found no /dev/console before starting us, fds 0-2 are closed
  exec </dev/console >/dev/console 2>&1
  mount -t proc proc /proc
  t stage1
  . /novabox-vm/env   # NOVABOX_VM_SRC: name of the project dir in the archive
  mkdir -p /newroot
  if [ "${NOVABOX_VM_ROOT:-bind}" = bind ]; then
    # Fast path: no copy. A bind mount of the rootfs, moved over / and chrooted
    # into, is a mount with a parent, which is all pivot_root(2) asks for.
    [ "$NOVABOX_VM_SRC" = novabox ] || mv "/$NOVABOX_VM_SRC" /novabox || die1 "cannot rename /$NOVABOX_VM_SRC"
    mount --bind / /newroot || die1 "cannot bind-mount /"
    t bound
    umount /proc
    mount --move /dev /newroot/dev
    cd /newroot && mount --move . / || die1 "cannot move the root"
    export NOVABOX_STAGE=2
    exec chroot . /init
  fi
  # tmpfs: a real tmpfs root, reached by switch_root after moving everything there
  # size: the tree is ~170 MB; leave room for images, layers and containers
  mount -t tmpfs -o mode=0755,size=90% tmpfs /newroot || die1 "cannot mount tmpfs"
  # bin first, by copy: mv of /bin would delete the applets we run with
  cp -a /bin /newroot/ || die1 "cannot copy /bin"
  export PATH=/newroot/bin
  for e in /* /.[!.]*; do
    case "$e" in
      /newroot|/dev|/proc|/sys|/init|/bin|'/.[!.]*') continue ;;
      "/$NOVABOX_VM_SRC") mv "$e" /newroot/novabox ;;
      *) mv "$e" /newroot/ ;;
    esac || die1 "cannot move $e"
  done
  cp /init /newroot/init
  t moved
  umount /proc
  mkdir -p /newroot/dev /newroot/proc /newroot/sys
  mount --move /dev /newroot/dev
  export NOVABOX_STAGE=2
  exec busybox switch_root /newroot /init
fi

# ---- stage 2 ----
rmdir /newroot 2>/dev/null
mkdir -p /proc /sys /dev /run /tmp /var/lib/novabox /var/tmp /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
# /tmp and /var/lib/novabox: ext4 on a loop device backed by a sparse file in RAM, as
# on a user's disk; tmpfs before Linux 6.3 cannot be idmapped (a container's own user
# namespace gets its image layers through idmapped mounts) nor hold user.* xattrs
# before 6.6. Plain tmpfs when the host shipped no mke2fs.
if [ -x /usr/local/bin/mke2fs ] && { [ -e /dev/loop-control ] || modprobe loop 2>/dev/null; }; then
  mkdir -p /disk /disk-ram
  mount -t tmpfs -o mode=0700,size=90% tmpfs /disk-ram
  truncate -s 64G /disk-ram/disk.img
  /usr/local/bin/mke2fs -q -t ext4 -O ^has_journal -E lazy_itable_init=1,nodiscard /disk-ram/disk.img >/dev/null 2>&1 &&
    mount -o loop,noatime,discard /disk-ram/disk.img /disk && mkdir -p /disk/tmp /disk/novabox &&
    chmod 1777 /disk/tmp && chmod 0711 /disk/novabox &&
    mount --bind /disk/tmp /tmp && mount --bind /disk/novabox /var/lib/novabox || {
      echo "guest: no ext4 disk, tmpfs instead" >&2
      mount -t tmpfs -o mode=1777 tmpfs /tmp
      mount -t tmpfs -o mode=0711 tmpfs /var/lib/novabox
    }
else
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  mount -t tmpfs -o mode=0711 tmpfs /var/lib/novabox
fi
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin; ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
# the root mount is shared on systemd hosts; containers must cope with that
mount --make-rshared /
t mounted

# pure cgroup v2, as on a systemd host with the unified hierarchy
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup
if [ "${NOVABOX_VM_CG_ENABLE:-1}" = 1 ]; then
  # systemd enables the controllers in the root's subtree_control; do the same
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
  done
fi
for c in cpu memory pids; do
  grep -qw "$c" /sys/fs/cgroup/cgroup.controllers || echo "init: WARNING: cgroup2 controller $c missing"
done

hostname novabox-vm
ip link set lo up
stty -onlcr 2>/dev/null   # plain \n on the console

# kernel modules (and their dependencies, resolved by modprobe from modules.dep)
for m in $(cat /lib/modules/"$(uname -r)"/novabox-vm.load 2>/dev/null); do
  modprobe "$m" || echo "init: WARNING: modprobe $m failed"
done

t modules
# read-only disks handed in by run.sh --drive NAME=FILE, found by their serial
mkdir -p /run/novabox-vm/drives
for b in /sys/block/vd*; do
  serial=$(cat "$b/serial" 2>/dev/null) && [ -n "$serial" ] && ln -s "/dev/${b##*/}" "/run/novabox-vm/drives/$serial"
done
unset NOVABOX_STAGE
export HOME=/root TERM=dumb LANG=C.UTF-8 USER=root LOGNAME=root
. /novabox-vm/env
# criu's ip (run.sh): iproute2's, beside busybox's
[ -x /usr/local/bin/criu-ip ] && export CR_IP_TOOL=/usr/local/bin/criu-ip
# tests scale their heaviest loops and timeouts to the emulated CPU (test/helpers/run-cli.ts)
export NOVABOX_IN_GUEST=1
cd /novabox || { echo "init: no /novabox"; poweroff -f; }
read -r up _ < /proc/uptime
echo "NOVABOX_VM_BOOTED uptime=$up"
if [ "${NOVABOX_VM_TTY:-0}" = 1 ]; then
  sh /novabox-vm/cmd.sh </dev/null
  rc=$?
else
  # through a pipe, like CI: isatty(stdout) is false
  set -o pipefail
  sh /novabox-vm/cmd.sh </dev/null 2>&1 | cat
  rc=$?
  set +o pipefail
fi
read -r up _ < /proc/uptime
echo "NOVABOX_VM_DONE uptime=$up"
echo "NOVABOX_VM_EXIT=$rc run=$NOVABOX_VM_RUN"
sync
poweroff -f
