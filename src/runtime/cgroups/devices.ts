/**
 * Device access inside a container: v1 writes devices.deny/devices.allow when the cgroup
 * is made (v1.ts); v2 has no such files, so an eBPF program with the same list is
 * attached to the cgroup (native-bindings/src/devices.c). Before the init runs.
 */
import { join } from 'node:path';
import { cgroupDevices } from '../../sys/native.js';
import type { CgroupLayout } from './types.js';

export function applyDeviceFilter(layout: CgroupLayout, cgroupPath: string): void {
  if (layout.kind === 'v2') cgroupDevices(join(layout.root, cgroupPath));
}
