/**
 * The sending half of the server stream (docs/server-stream.md): a stopped server's
 * record, its image's record and layers (as distributed: the blobs `image save` streams),
 * and its writable layer packed as a snapshot packs it (native-bindings/src/layer.c; a
 * server in its own user namespace gets its container ids back).
 *
 * The server must be SHUTOFF: its task is `migrating` while it is read, so nothing starts
 * it meanwhile (reconcile clears the task of a killed export). `server migrate` stops an
 * ACTIVE server first.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { Conflict, NotFound } from '../../errors.js';
import { POWER_STATE } from '../../model/states.js';
import type { Flavor, Server } from '../../model/records.js';
import { selfStart } from '../../runtime/proc.js';
import { serverDirs } from '../../runtime/server.js';
import { volumeDir, volumeSize } from '../../runtime/volumes.js';
import type { PortMapping } from '../../runtime/network/ports.js';
import { Staging, blobPath, packLayer } from '../../images/layers.js';
import type { ImageCaller, ImageService } from '../../images/service.js';
import type { Caller, ComputeService } from '../servers.js';
import { FORMAT, FORMAT_VERSION, type FrameKind, type Meta, frameHead, type StreamHeader } from './stream.js';
import { createHash } from 'node:crypto';

export interface LayerMeta {
  diffId: string;
  blobDigest: string;
  mediaType: string;
  blobSize: number;
  size: number;
}

export interface ImageMeta {
  id: string;
  name: string;
  visibility: string;
  diskFormat: string | null;
  containerFormat: string | null;
  minDisk: number;
  minRam: number;
  tags: string[];
  properties: Record<string, string>;
  config: Record<string, unknown>;
  createdAt: string;
  layers: LayerMeta[];
}

export interface ServerMeta {
  /** the record as the source keeps it (fields a newer novabox adds travel too) */
  server: Server;
  flavor: Flavor;
  key: { name: string; type: string; publicKey: string; fingerprint: string } | null;
  fixedIp: string | null;
  /** published ports, made again on the target (absent in a stream of an older novabox) */
  ports?: PortMapping[];
  /** named volumes attached to the server; each one's files follow in a `V` frame */
  volumes?: VolumeMeta[];
}

export interface VolumeMeta {
  id: string;
  name: string;
  description: string;
  mountPath: string;
  readOnly: boolean;
  /** the mode of its top directory (the tar holds only what is below it) */
  mode: number;
  /** sha256 of its tar (packed as a writable layer is, owners in the container's ids) */
  diffId: string;
  size: number;
}

export interface WritableMeta {
  /** sha256 of the tar (its diff id) */
  diffId: string;
  size: number;
}

/** What a stream carries, ready to send: the records, and the files of the layers. */
export interface ExportParts {
  header: StreamHeader;
  server: ServerMeta;
  image: ImageMeta;
  writable: WritableMeta & { file: string };
  /** the tar of each volume, by id */
  volumeFiles: Map<string, string>;
  staging: Staging;
}

/** Writes frames to a byte sink, with its back-pressure, counting what it wrote. */
export class FrameWriter {
  bytes = 0;
  private failed: Error | undefined;

  constructor(private readonly out: Writable) {
    out.on('error', (e) => (this.failed ??= e));
  }

  private async put(b: Buffer): Promise<void> {
    if (this.failed) throw this.failed;
    this.bytes += b.length;
    if (this.out.write(b)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.out.off('drain', ok);
        this.out.off('error', done);
        this.out.off('close', closed);
        err ? reject(err) : resolve();
      };
      const ok = () => done();
      const closed = () => done(this.failed ?? new Error('the other side closed the stream'));
      this.out.once('drain', ok);
      this.out.once('error', done);
      this.out.once('close', closed);
    });
  }

  /** One frame; a payload from memory or a file (read in 1 MiB pieces). */
  async frame(kind: FrameKind, meta: Meta, payload?: Buffer | { file: string; size: number }): Promise<void> {
    const size = payload === undefined ? 0 : Buffer.isBuffer(payload) ? payload.length : payload.size;
    const head = frameHead(kind, meta, size);
    const h = createHash('sha256').update(head);
    await this.put(head);
    if (Buffer.isBuffer(payload)) {
      h.update(payload);
      await this.put(payload);
    } else if (payload) {
      const fd = openSync(payload.file, 'r');
      try {
        let left = payload.size;
        while (left > 0) {
          const b = Buffer.allocUnsafe(Math.min(left, 1 << 20));
          const n = readSync(fd, b, 0, b.length, null);
          if (n === 0) throw new Conflict(`${payload.file} changed while it was being sent`);
          const c = b.subarray(0, n);
          h.update(c);
          await this.put(c);
          left -= n;
        }
      } finally {
        closeSync(fd);
      }
    }
    await this.put(h.digest());
  }

  /** Resolves once what was written has been handed to the sink's file or pipe. */
  async flush(): Promise<void> {
    if (this.failed) throw this.failed;
    await new Promise<void>((resolve, reject) => this.out.write(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  }
}

/**
 * Claim a SHUTOFF server for sending (task `migrating`): the caller clears it with
 * `release` whatever happens.
 */
export function claimForExport(compute: ComputeService, ref: string, caller: Caller, action: string, running = false): Server {
  const s = compute.find(ref, caller);
  if (s.ephemeral) {
    throw new Conflict(`server "${s.name}" is ephemeral: its writable layer lives on a tmpfs inside the server and cannot be exported`);
  }
  refuseSizedVolumes(compute, s, 'exported');
  const from = running ? 'active' : 'stopped';
  if (s.vmState !== from || s.taskState !== null) {
    throw new Conflict(
      `Cannot '${action}' instance ${s.id} while it is in vm_state ${s.vmState}${s.taskState ? ` (task_state ${s.taskState})` : ''}`,
      { hint: s.vmState === 'active' ? `stop it first ("novabox server stop ${s.name}"), or use "novabox server migrate"` : undefined },
    );
  }
  return compute.store.servers.transition(s.id, {
    from: [from],
    action,
    to: { taskState: 'migrating', taskOwnerPid: process.pid, taskOwnerStart: selfStart() },
  });
}

/**
 * The stream carries directory volumes only: a sized volume (an ext4 image) is refused up
 * front, before anything is claimed or sent, naming the volume and what to do.
 */
export function refuseSizedVolumes(compute: ComputeService, s: Server, verb: 'exported' | 'migrated'): void {
  for (const v of compute.volumes.ofServer(s.id)) {
    if (volumeSize(v.id) !== null) {
      throw new Conflict(
        `server "${s.name}" has the sized volume "${v.name}" (an ext4 image) attached, and a server stream carries only directory volumes: it cannot be ${verb}; detach it first ("novabox server remove volume ${s.name} ${v.name}")`,
      );
    }
  }
}

export function releaseClaim(compute: ComputeService, id: string): void {
  const cur = compute.store.servers.get(id);
  if (cur && cur.taskState === 'migrating' && cur.taskOwnerPid === process.pid) {
    compute.store.servers.update(id, { taskState: null, taskOwnerPid: null, taskOwnerStart: null });
  }
}

/** The parts of a claimed server's stream; its writable layer packed into a staging file. */
export function prepareExport(
  compute: ComputeService,
  images: ImageService,
  s: Server,
  opts: { start?: boolean; aroundPack?: <T>(pack: () => T) => T } = {},
): ExportParts {
  const rec =
    images.repo.get(s.imageRef) ?? images.repo.byName(s.imageName) ?? (s.imageName === 'busybox' ? images.ensureBuiltin() : undefined);
  if (!rec || rec.status !== 'active') {
    throw new Conflict(`the image of server "${s.name}" (${s.imageName}) is not in the image store: it cannot be exported`, {
      hint: `rebuild the server on an image of the store first ("novabox server rebuild --image IMAGE ${s.name}")`,
    });
  }
  const layers = rec.layers.map((d) => {
    const l = images.repo.layer(d);
    if (!l) throw new NotFound(`layer ${d} of image "${rec.name}" is missing from the store`);
    return l;
  });
  let key: ServerMeta['key'] = null;
  if (s.keyName) {
    try {
      const k = compute.store.keypairs.get(s.userId, s.keyName);
      key = { name: k.name, type: k.type, publicKey: k.publicKey, fingerprint: k.fingerprint };
    } catch {
      /* the keypair was deleted: the server keeps only its name, as in Nova */
    }
  }
  const staging = new Staging('export');
  try {
    const idmap = s.userns === 'auto' ? compute.idmaps.idmapOf(s.id) : undefined;
    const shift = idmap ? { uidBase: idmap.uidBase, gidBase: idmap.gidBase, count: idmap.size } : undefined;
    const file = staging.path('writable.tar');
    const rows = compute.volumes.ofServer(s.id);
    const volumeFiles = new Map<string, string>();
    const volumes: VolumeMeta[] = [];
    const pack = () => {
      const w = packLayer(serverDirs(s.id).upper, file, null, true, shift);
      for (const v of rows) {
        // its files are in the ids of the range that used it last (volumes.mountsFor)
        const vf = staging.path(`volume-${v.id}.tar`);
        const vs = v.uidBase || v.gidBase ? { uidBase: v.uidBase, gidBase: v.gidBase, count: 65536 } : undefined;
        const p = packLayer(volumeDir(v.id), vf, null, false, vs);
        volumeFiles.set(v.id, vf);
        volumes.push({
          id: v.id,
          name: v.name,
          description: v.description,
          mountPath: v.mountPath!,
          readOnly: v.readOnly,
          mode: statSync(volumeDir(v.id)).mode & 0o7777,
          diffId: p.diffId,
          size: p.size,
        });
      }
      return w;
    };
    const packed = opts.aroundPack ? opts.aroundPack(pack) : pack();
    return {
      header: {
        format: FORMAT,
        version: FORMAT_VERSION,
        arch: process.arch,
        os: 'linux',
        createdAt: new Date().toISOString(),
        serverId: s.id,
        ...(opts.start ? { start: true } : {}),
      },
      server: {
        server: { ...s, taskState: null, taskOwnerPid: null, taskOwnerStart: null, powerState: POWER_STATE.SHUTDOWN },
        flavor: compute.flavorOf(s),
        key,
        fixedIp: compute.store.leases.ofOwner(s.id)[0]?.address ?? null,
        ports: compute.ports.of(s.id),
        volumes,
      },
      image: {
        id: rec.id,
        name: rec.name,
        visibility: rec.visibility,
        diskFormat: rec.diskFormat,
        containerFormat: rec.containerFormat,
        minDisk: rec.minDisk,
        minRam: rec.minRam,
        tags: rec.tags,
        properties: rec.properties,
        config: rec.config as unknown as Record<string, unknown>,
        createdAt: rec.createdAt,
        layers,
      },
      writable: { diffId: packed.diffId, size: packed.size, file },
      volumeFiles,
      staging,
    };
  } catch (err) {
    staging.remove();
    throw err;
  }
}

/** Diff ids of the image's layers (what a receiver is asked about). */
export function layerIds(p: ExportParts): string[] {
  return p.image.layers.map((l) => l.diffId);
}

/** Write the stream; layers in `skip` (the receiver has them) are left out; `end: false` leaves the end frame to the caller (pre-copy's delta comes first). */
export async function sendParts(w: FrameWriter, p: ExportParts, skip: ReadonlySet<string> = new Set(), end = true): Promise<void> {
  await w.frame('H', p.header as unknown as Meta);
  await w.frame('S', p.server as unknown as Meta);
  await w.frame('I', p.image as unknown as Meta);
  let n = 3;
  for (const l of p.image.layers) {
    if (skip.has(l.diffId)) continue;
    await w.frame('L', l as unknown as Meta, { file: blobPath(l.blobDigest), size: l.blobSize });
    n++;
  }
  for (const v of p.server.volumes ?? []) {
    await w.frame('V', { id: v.id, diffId: v.diffId, size: v.size }, { file: p.volumeFiles.get(v.id)!, size: v.size });
    n++;
  }
  await w.frame('W', { diffId: p.writable.diffId, size: p.writable.size }, { file: p.writable.file, size: p.writable.size });
  if (end) await w.frame('E', { frames: n + 2 });
}

/** `novabox server export`: the whole stream of a SHUTOFF server to `out`. */
export async function exportServer(
  compute: ComputeService,
  images: ImageService,
  ref: string,
  out: Writable,
  caller: Caller & ImageCaller,
): Promise<{ server: Server; bytes: number; writableBytes: number }> {
  const s = claimForExport(compute, ref, caller, 'export');
  try {
    const parts = prepareExport(compute, images, s);
    try {
      const w = new FrameWriter(out);
      await sendParts(w, parts);
      await w.flush();
      return { server: s, bytes: w.bytes, writableBytes: parts.writable.size };
    } finally {
      parts.staging.remove();
    }
  } finally {
    releaseClaim(compute, s.id);
  }
}
