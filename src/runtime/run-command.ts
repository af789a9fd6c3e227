/** Glue for `novabox run`: options -> request -> image -> prepared plan -> foreground run. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BadRequest, NotFound } from '../errors.js';
import type { CliContext } from '../cli/main.js';
import { readImageRef, layerDirs, checkImageName, ensureLayers, type ImageConfig } from '../images/store.js';
import { cgroupDriver } from './cgroups/index.js';
import { detectCgroups } from './cgroups/detect.js';
import { parseMemory, cpusToQuota } from './cgroups/limits.js';
import { isContainerLive, prepare, validateRequest, type RunRequest } from './container.js';
import { gcStale } from './gc.js';
import { runForeground } from './run.js';
import { trace } from '../util/trace.js';
import { runKind } from '../util/cache-hint.js';

export interface RunOptions extends Omit<RunRequest, 'memoryBytes' | 'cpuQuota'> {
  memory?: string;
  cpus?: string;
  dryRun: boolean;
}

async function resolveImage(o: RunOptions): Promise<{ name: string; layerDirs: string[]; config: ImageConfig }> {
  if (o.rootfsDir !== undefined) {
    const dir = resolve(o.rootfsDir);
    // "<dir>/." resolves only through a directory: one access(2), where statSync's first
    // use costs ~0.3 ms on the start path (nothing else on it stats)
    if (!existsSync(`${dir}/.`)) throw new NotFound(`rootfs ${dir} is not a directory`);
    return { name: `rootfs:${dir}`, layerDirs: [dir], config: { cmd: ['sh'], env: [], workingDir: '/', user: '' } };
  }
  const name = o.image!;
  checkImageName(name);
  let image = readImageRef(name);
  if (!image && name === 'busybox' && !o.dryRun) image = await (await import('../images/busybox.js')).ensureBusybox();
  if (!image) throw new NotFound(`image "${name}" not found`, { hint: 'the built-in image is "busybox"' });
  if (!o.dryRun) await ensureLayers(image);
  return { name: image.name, layerDirs: layerDirs(image), config: image.config };
}

function jsonSafe(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

export async function runCommand(o: RunOptions, ctx: CliContext): Promise<number> {
  trace('run-command loaded');
  validateRequest(o);
  const memoryBytes = o.memory === undefined ? undefined : parseMemory(o.memory);
  if (memoryBytes !== undefined && memoryBytes < 6 * 1024 * 1024) {
    throw new BadRequest(`memory limit ${o.memory} is too small: a container needs at least 6 MiB`);
  }
  const cpuQuota = o.cpus === undefined ? undefined : cpusToQuota(Number.isFinite(Number(o.cpus)) ? Number(o.cpus) : NaN);
  const image = await resolveImage(o);
  trace('image resolved');
  const layout = detectCgroups();
  trace('cgroups detected');
  // The bridge network needs the state database (leases); `--network none|host` never opens it.
  const bridged = o.network === 'novabox' && !o.dryRun;
  if (bridged) runKind('net');
  const network = bridged ? (await ctx.compute()).network : undefined;
  network?.check();
  const prepared = prepare({ ...o, memoryBytes, cpuQuota }, image, layout);
  trace('planned');
  if (o.dryRun) {
    const { toCgroupWrites } = await import('./cgroups/limits.js');
    ctx.stdout(
      JSON.stringify(
        {
          container: prepared.state,
          cgroup: {
            layout: layout.kind,
            path: prepared.state.cgroupPath,
            writes: toCgroupWrites(layout.kind === 'v2' ? 'v2' : 'v1', prepared.limits),
            // what the monitor runs before the clone and after the reap
            steps: cgroupDriver(layout).planCreate(prepared.state.cgroupPath, prepared.limits),
          },
          plan: prepared.plan,
        },
        jsonSafe,
        2,
      ) + '\n',
    );
    return 0;
  }
  const driver = cgroupDriver(layout);
  const meanwhile = (): void => {
    gcStale(driver);
    // Leases of containers whose CLI died (gc above, or `ps`/`rm` before, cleaned the rest).
    network?.releaseGone('container', isContainerLive);
    trace('gc done');
  };
  if (network) {
    const id = prepared.state.id;
    prepared.network = { allocate: () => network.attachmentFor('container', id), release: () => network.release(id) };
  }
  return runForeground(prepared, driver, {
    interactive: o.interactive,
    stderr: (line) => ctx.stderr(line + '\n'),
    meanwhile,
  });
}
