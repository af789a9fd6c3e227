/**
 * The `novabox run` use case: options -> request -> image -> prepared plan -> foreground
 * run. It takes what it needs as parameters (RunIo: the output streams and the bridge
 * network, whose store is opened only when `--network novabox` asks for it), never a
 * front end's context.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BadRequest, NotFound } from '../errors.js';
import type { NetworkService } from './network.js';
import type { VolumeService } from './volumes.js';
import type { PortService } from './ports.js';
import type { PortMapping } from '../runtime/network/ports.js';
import { parseVolumeMount, volumeDir, type VolumeMount } from '../runtime/volumes.js';
import { readImageRef, layerDirs, checkImageName, ensureLayers, type ImageConfig } from '../images/store.js';
import { imageOrBuiltin } from '../images/builtin.js';
import { cgroupDriver } from '../runtime/cgroups/index.js';
import { detectCgroups } from '../runtime/cgroups/detect.js';
import { parseCpus, parseMemory, cpusToQuota } from '../runtime/cgroups/limits.js';
import { containerDirs, isContainerLive, newId, prepare, validateRequest, type RunRequest } from '../runtime/container.js';
import { allocateIdmap, gcContainerLeases, releaseLease, usernsMode, type IdmapLease } from '../runtime/userns/index.js';
import { gcStale } from '../runtime/gc.js';
import { runForeground } from '../runtime/run.js';
import { trace } from '../util/trace.js';
import { testPause } from '../util/test-pause.js';
import { runKind } from '../util/cache-hint.js';

export interface RunOptions extends Omit<RunRequest, 'memoryBytes' | 'cpuQuota' | 'id' | 'idmap'> {
  /** published ports, `[HOSTIP:]HOSTPORT:PORT[/tcp|udp]` each (compute/ports.ts), while it runs */
  publish?: string[];
  memory?: string;
  cpus?: string;
  /** auto: a user namespace with an id range of its own; host: none. Default: config.json's "userns", else auto */
  userns?: string;
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
  const image = o.dryRun ? readImageRef(name) : await imageOrBuiltin(name);
  if (!image) throw new NotFound(`image "${name}" not found`, { hint: 'the built-in image is "busybox"' });
  if (!o.dryRun) await ensureLayers(image);
  return { name: image.name, layerDirs: layerDirs(image), config: image.config };
}

function jsonSafe(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** What a run writes to and reaches, given by the front end. */
export interface RunIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  /** the bridge network (leases in the state database), asked for only on `--network novabox` */
  network: () => Promise<NetworkService>;
  /** named volumes (the state database), asked for only by a `-v NAME:/path` */
  volumes?: () => Promise<VolumeService>;
  /** published ports (the state database), asked for only by a `-p` */
  ports?: () => Promise<PortService>;
}

/** `-v /host/path:/path` binds a host path; `-v NAME:/path` a named volume (novabox volume create). */
function splitVolumes(specs: string[] | undefined): { host: string[]; named: VolumeMount[] } {
  const host: string[] = [];
  const named: VolumeMount[] = [];
  for (const v of specs ?? []) {
    if (v.startsWith('/')) host.push(v);
    else named.push(parseVolumeMount(v));
  }
  return { host, named };
}

export async function runCommand(o: RunOptions, ctx: RunIo): Promise<number> {
  trace('run-command loaded');
  const { host, named } = splitVolumes(o.volumes);
  validateRequest({ ...o, volumes: host });
  const memoryBytes = o.memory === undefined ? undefined : parseMemory(o.memory);
  if (memoryBytes !== undefined && memoryBytes < 6 * 1024 * 1024) {
    throw new BadRequest(`memory limit ${o.memory} is too small: a container needs at least 6 MiB`);
  }
  const cpuQuota = o.cpus === undefined ? undefined : cpusToQuota(parseCpus(o.cpus));
  const userns = usernsMode(o.userns);
  const image = await resolveImage(o);
  trace('image resolved');
  const layout = detectCgroups();
  trace('cgroups detected');
  // The bridge network needs the state database (leases); `--network none|host` never opens it.
  const bridged = o.network === 'novabox' && !o.dryRun;
  if (bridged) runKind('net');
  const network = bridged ? await ctx.network() : undefined;
  network?.check();
  // Published ports: checked before anything is made, taken with the address lease.
  const portService = o.publish?.length && ctx.ports ? await ctx.ports() : undefined;
  const ports = portService ? portService.parse(o.publish!, { network: o.network, count: 1 }) : [];
  // Named volumes are in the state database too (asked for before anything is made).
  const volumes = named.length && ctx.volumes ? await ctx.volumes() : undefined;
  if (named.length && !volumes) throw new BadRequest('named volumes need the state database');
  // The id range: its lease is the first thing of the container on disk, given back below
  // unless the container is kept (no --rm: its writable layer holds ids of the range).
  const id = newId();
  const seen: IdmapLease[] = []; // what the lease read, for the gc meanwhile
  const lease = userns === 'auto' && !o.dryRun ? allocateIdmap('container', id, (line) => ctx.stderr(`${line}\n`), seen, true) : undefined;
  if (lease) trace('id range leased');
  testPause('idmap-leased'); // its lease taken, nothing else of the container made yet
  try {
    // named volumes: attached to the container for its life (one holder at a time)
    const binds = o.dryRun
      ? named.map((m) => `${volumeDir(volumes!.get(m.volume).id)}:${m.path}${m.readOnly ? ':ro' : ''}`)
      : (volumes?.attachContainer(id, named, lease?.idmap) ?? []);
    return await runPrepared(
      o,
      ctx,
      { ...o, memoryBytes, cpuQuota, id, idmap: lease?.idmap, volumes: [...host, ...binds] },
      image,
      layout,
      network,
      userns,
      lease ? seen : undefined,
      portService && { service: portService, ports },
    );
  } finally {
    if (lease && !existsSync(containerDirs(id).dir)) releaseLease(lease);
    if (volumes && !o.dryRun) {
      volumes.unstage(id);
      volumes.detachAll(id);
    }
  }
}

async function runPrepared(
  o: RunOptions,
  ctx: RunIo,
  req: RunRequest,
  image: Awaited<ReturnType<typeof resolveImage>>,
  layout: ReturnType<typeof detectCgroups>,
  network: NetworkService | undefined,
  userns: string,
  seenLeases: IdmapLease[] | undefined,
  published?: { service: PortService; ports: PortMapping[] },
): Promise<number> {
  const prepared = prepare(req, image, layout);
  trace('planned');
  if (o.dryRun) {
    const { toCgroupWrites } = await import('../runtime/cgroups/limits.js');
    ctx.stdout(
      JSON.stringify(
        {
          container: prepared.state,
          userns,
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
    gcContainerLeases(seenLeases);
    trace('gc done');
  };
  if (published?.ports.length) prepared.state.ports = published.service.labels(published.ports);
  if (network) {
    const id = prepared.state.id;
    prepared.network = published
      ? {
          allocate: () => {
            const a = network.attachmentFor('container', id);
            published.service.publishContainer(id, published.ports);
            return a;
          },
          release: () => {
            published.service.unpublishContainer(id);
            network.releaseLease(id);
          },
          attached: () => published.service.started(id),
        }
      : { allocate: () => network.attachmentFor('container', id), release: () => network.releaseLease(id) };
  }
  return runForeground(prepared, driver, {
    interactive: o.interactive,
    stderr: (line) => ctx.stderr(line + '\n'),
    meanwhile,
  });
}
