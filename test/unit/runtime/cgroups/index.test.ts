import { describe, expect, it } from 'vitest';
import type { CgroupLayout } from '../../../../src/runtime/cgroups/types.js';
import { cgroupDriver } from '../../../../src/runtime/cgroups/index.js';
import { CgroupV1Driver } from '../../../../src/runtime/cgroups/v1.js';
import { CgroupV2Driver } from '../../../../src/runtime/cgroups/v2.js';

describe('cgroupDriver', () => {
  it.each<[CgroupLayout, abstract new (...args: never[]) => unknown]>([
    [{ kind: 'v1', mounts: { memory: '/m' } }, CgroupV1Driver],
    [{ kind: 'hybrid', mounts: { memory: '/m' }, unified: '/u' }, CgroupV1Driver],
    [{ kind: 'v2', root: '/r', controllers: ['memory'] }, CgroupV2Driver],
  ])('%o', (layout, backend) => {
    const driver = cgroupDriver(layout);
    expect(driver).toBeInstanceOf(backend);
    expect(driver.layout).toEqual(layout);
  });
});
