/** The cgroup driver for this host, picked by detection (backends in a map). */
import type { DriverOptions } from './cgroupfs.js';
import { detectCgroups } from './detect.js';
import type { CgroupDriver, CgroupLayout } from './types.js';
import { CgroupV1Driver } from './v1.js';
import { CgroupV2Driver } from './v2.js';

type V1Layout = Exclude<CgroupLayout, { kind: 'v2' }>;
type V2Layout = Extract<CgroupLayout, { kind: 'v2' }>;

const BACKENDS = {
  v1: (layout: V1Layout, opts?: DriverOptions) => new CgroupV1Driver(layout.mounts, { ...opts, named: layout.named }),
  hybrid: (layout: V1Layout, opts?: DriverOptions) =>
    new CgroupV1Driver(layout.mounts, { ...opts, unified: layout.unified, named: layout.named }),
  v2: (layout: V2Layout, opts?: DriverOptions) => new CgroupV2Driver(layout.root, { ...opts, controllers: layout.controllers }),
} satisfies Record<CgroupLayout['kind'], unknown>;

export function cgroupDriver(layout: CgroupLayout = detectCgroups(), opts?: DriverOptions): CgroupDriver {
  return layout.kind === 'v2' ? BACKENDS.v2(layout, opts) : BACKENDS[layout.kind](layout, opts);
}

export { detectCgroups } from './detect.js';
export { cpusToQuota, parseMemory, toCgroupWrites } from './limits.js';
export type { DriverOptions } from './cgroupfs.js';
export { CgroupV1Driver } from './v1.js';
export { CgroupV2Driver } from './v2.js';
export type * from './types.js';
