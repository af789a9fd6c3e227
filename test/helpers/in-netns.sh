#!/bin/sh
# in-netns.sh NS COMMAND...: run COMMAND in the network namespace /run/netns/NS as a second
# "host" would: a mount namespace of its own (slave of the host's) where /sys is a sysfs of
# that network namespace (as `ip netns exec` makes it, so /sys/class/net shows its links)
# with the host's cgroup mounts kept under /sys/fs/cgroup (which `ip netns exec` loses).
ns=$1
shift
exec nsenter --net="/run/netns/$ns" unshare --mount --propagation slave sh -c '
  d=$(mktemp -d) || exit 1
  mount --rbind /sys/fs/cgroup "$d" && umount -l /sys && mount -t sysfs sysfs /sys &&
    mount --move "$d" /sys/fs/cgroup && rmdir "$d" && exec "$@"
  rmdir "$d"
  exit 1' sh "$@"
