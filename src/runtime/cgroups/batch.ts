/**
 * A cgroup's creation and removal as data: the drivers (v1.ts, v2.ts) plan them, purely,
 * as an ordered list of steps; two executors run the same list. `novabox run` hands it to
 * the container monitor inside the launch plan (native-bindings/src/cgroup.c): the
 * monitor makes the cgroup before it clones the init and removes it once the init was
 * reaped, off the CLI's critical path (servers too, without the removal: their cgroup
 * outlives the start). create() runs the same steps here, through the driver's CgroupIo.
 */
import { Conflict, fromNodeError } from '../../errors.js';
import type { CgroupStep } from '../../sys/ops.js';
import { type CgroupIo, isErrno, readCgroupFile, writeCgroupFile } from './cgroupfs.js';

export type { CgroupStep };
export { describeCgroupStep } from '../../sys/ops.js';

import type { CgroupBatch } from './types.js';
export type { CgroupBatch };

/**
 * `dir/name`, for paths already normal (mount points, checked cgroup paths, file names).
 * node:path's join normalises character by character: ~15-20 us a call in the cold code
 * of a container start, and a v1 cgroup's plan makes ~100 paths (measured 1.6-2.6 ms).
 */
export function sub(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

export interface ExecuteOptions {
  io: CgroupIo;
}

/**
 * Run the creation steps in this process; what mkdir made is removed again when a step
 * fails. The errors are the drivers' usual ones: an existing cgroup is a Conflict, a
 * refused write a SysError naming the file.
 */
export function executeCreate(batch: CgroupBatch, opts: ExecuteOptions): void {
  const created: string[] = [];
  try {
    for (const s of batch.create) runStep(s, opts, created);
  } catch (err) {
    for (const dir of created.reverse()) {
      try {
        opts.io.rmdir(dir);
      } catch {
        // the original error matters more; a leftover empty cgroup is harmless
      }
    }
    throw err;
  }
}

function runStep(s: CgroupStep, opts: ExecuteOptions, created: string[]): void {
  switch (s.step) {
    case 'mkdir':
      try {
        opts.io.mkdir(s.path);
        created.push(s.path);
      } catch (err) {
        if (!isErrno(err, 'EEXIST')) throw fromNodeError(err, s.path);
        if (s.exclusive) throw existing(s.path);
      }
      return;
    case 'enable': {
      const enabled = readCgroupFile(s.path).split(/\s+/);
      const missing = s.controllers.filter((c) => !enabled.includes(c));
      if (missing.length > 0) writeCgroupFile(s.path, missing.map((c) => `+${c}`).join(' '));
      return;
    }
    case 'inherit':
      if (!readCgroupFile(s.path).trim()) writeCgroupFile(s.path, readCgroupFile(s.from).trim());
      return;
    case 'write':
      try {
        writeCgroupFile(s.path, s.value);
      } catch (err) {
        if (!(s.optional && isErrno(err, 'ENOENT'))) throw err;
      }
      return;
    case 'devices':
      opts.io.devices(s.path, s.allow);
      return;
    case 'rmdir':
    case 'oom-count':
      return; // removal steps: the drivers' remove() does the thorough version
  }
}

export function existing(path: string): Conflict {
  return new Conflict(`cgroup ${path} already exists`, {
    hint: 'another container uses it, or a crash left it behind: remove it or pick another name',
  });
}

/**
 * The mkdir steps of `segments` below `root` (parents may exist, the last level must
 * not), with `beforeLevel(parent)` steps ahead of each mkdir (v2 enables controllers).
 */
export function levelSteps(root: string, segments: string[], beforeLevel?: (parent: string) => CgroupStep[]): CgroupStep[] {
  const steps: CgroupStep[] = [];
  pushLevelSteps(steps, root, segments, beforeLevel);
  return steps;
}

/** levelSteps into `steps` (the drivers' planCreate: no array per hierarchy, no closure per level). */
export function pushLevelSteps(
  steps: CgroupStep[],
  root: string,
  segments: string[],
  beforeLevel?: (parent: string) => CgroupStep[],
): void {
  let dir = root;
  const last = segments.length - 1;
  for (let i = 0; i <= last; i++) {
    if (beforeLevel) for (const s of beforeLevel(dir)) steps.push(s);
    dir = sub(dir, segments[i]);
    steps.push(i === last ? { step: 'mkdir', path: dir, exclusive: true } : { step: 'mkdir', path: dir });
  }
}

/** A limit write as a step: `optional` only when set (the dry-run JSON shows no `false`). */
export function writeStep(path: string, value: string, optional: boolean | undefined): CgroupStep {
  return optional ? { step: 'write', path, value, optional: true } : { step: 'write', path, value };
}

/**
 * rmdir of the cgroup's directories. Their parent (NOVABOX_CGROUP_PARENT, "novabox") is
 * made by the first container and kept, as Docker keeps "docker": making it again costs
 * every start a memory cgroup's creation per hierarchy (~1 ms on a v1 host), and a
 * parent pruned by one container's exit while another makes its cgroup under it fails
 * that creation (retried, cgroupfs.ts retryVanished, cgroup.c nb_cg_create).
 */
export function removalSteps(dirs: string[]): CgroupStep[] {
  const steps: CgroupStep[] = [];
  pushRemovalSteps(steps, dirs);
  return steps;
}

export function pushRemovalSteps(steps: CgroupStep[], dirs: string[]): void {
  for (const d of dirs) steps.push({ step: 'rmdir', path: d });
}
