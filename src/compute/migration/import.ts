/**
 * The receiving half of the server stream (docs/server-stream.md). Two phases:
 *
 *   read    every frame into a Staging dir under $NOVABOX_ROOT/tmp (layers the host lacks
 *           extracted there, each checked against its frame digest, blob digest and diff
 *           id; the writable layer's tar kept); nothing outside the Staging is touched, so
 *           a cut or corrupt stream leaves only that dir, removed before the command
 *           exits (and by the next command's sweep after a kill -9);
 *   commit  one transaction: the image record if the host lacks it (its layers renamed
 *           into the store), the server's record (same id; BUILD while it is made), its
 *           address and id range leased as a create leases them, the instance action;
 *           then the writable layer is unpacked (shifted into the new range) and renamed
 *           into servers/<id>/upper, and the server is SHUTOFF. A failure here undoes
 *           all of it (`undo`), which is also how `server receive` takes back a server
 *           whose sender did not confirm.
 */
import { chmodSync, chownSync, closeSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { BadRequest, Conflict } from '../../errors.js';
import { POWER_STATE } from '../../model/states.js';
import type { Server } from '../../model/records.js';
import { selfStart } from '../../runtime/proc.js';
import { logLine, removeServerFiles, serverDirs } from '../../runtime/server.js';
import { releaseOwner } from '../../runtime/userns/index.js';
import { trace } from '../../util/trace.js';
import { TarIdShifter } from '../../images/id-shift.js';
import { MEDIA_TAR_GZIP, MEDIA_TAR_ZSTD, Staging, extractLayer, fileStream, hexOf, type Compression } from '../../images/layers.js';
import type { ImageCaller, ImageService, Layered } from '../../images/service.js';
import { nowIso } from '../../store/time.js';
import { checkServerName, type Caller, type ComputeService } from '../servers.js';
import type { ImageMeta, ServerMeta, VolumeMeta, WritableMeta } from './export.js';
import { checkVolumeName } from '../volumes.js';
import { checkMountPath, removeVolumeDir, volumeDir, volumesDir } from '../../runtime/volumes.js';
import { applyDelta } from './precopy.js';
import { type ByteReader, type FrameInfo, type StreamHeader, StreamCut, checkHeader, kindName, readFrame } from './stream.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface ImportOptions {
  /** the server's name here (default: its name on the source) */
  name?: string;
  /** the instance action recorded here: import (default) or migrate */
  action?: 'import' | 'migrate';
  /** said once per notice (an address or image name that could not be kept) */
  notice?: (line: string) => void;
  /** `receive`, pre-copy: every layer and the writable layer are staged (only the delta and the end are to come) */
  onWritable?: () => Promise<void>;
  /** a live arrival in its own user namespace: exactly this range is leased (the dump's maps) */
  idmap?: { uidBase: number; gidBase: number };
}

/** A stream read into a Staging, nothing committed yet. */
export interface StagedStream {
  header: StreamHeader;
  server: ServerMeta;
  image: ImageMeta;
  layers: Map<string, Layered>;
  writable: WritableMeta & { file: string };
  /** pre-copy: what changed in the writable layer after it was sent (precopy.ts) */
  delta?: { file: string; deleted: string[] };
  /** each volume's tar (and its pre-copy delta), by id; the records are in `server.volumes` */
  volumes: Map<string, { file: string; delta?: { file: string; deleted: string[] } }>;
  /** live migration: the CRIU image directories as tars (`C` frames), pre-dump rounds first, the final dump last */
  criu: CriuPart[];
  staging: Staging;
  /** bytes read from the input */
  bytes: number;
}

/** A `C` frame: one CRIU image directory (`dir`, named as the dump's --prev-images-dir names it) as a tar. */
export interface CriuPart {
  file: string;
  dir: string;
  final: boolean;
  /** the final dump's: pid 1's fd 1 as /proc named it on the source (`pipe:[N]`) */
  stdio?: string;
}

export interface Imported {
  server: Server;
  /** take the imported server back (records, leases, files; the image if this import made it) */
  undo: () => void;
}

function compressionOf(mediaType: string): Compression {
  return mediaType === MEDIA_TAR_GZIP ? 'gzip' : mediaType === MEDIA_TAR_ZSTD ? 'zstd' : 'none';
}

function expect(f: FrameInfo | undefined, kind: FrameInfo['kind']): FrameInfo {
  if (!f) throw new StreamCut(`the server stream ends early (before its ${kindName(kind)} frame): it was cut; nothing was imported`);
  if (f.kind !== kind)
    throw new BadRequest(`the server stream is corrupt: a ${kindName(f.kind)} frame where its ${kindName(kind)} frame belongs`);
  return f;
}

/** The stream's volumes: well-formed, and no volume of the same name or id here (checked again at commit). */
function checkVolumes(compute: ComputeService, list: unknown): Map<string, VolumeMeta> {
  const out = new Map<string, VolumeMeta>();
  if (list === undefined) return out;
  if (!Array.isArray(list)) throw new BadRequest('the server stream is corrupt: its volumes are not a list');
  for (const v of list as VolumeMeta[]) {
    if (!v || typeof v.id !== 'string' || !UUID_RE.test(v.id) || typeof v.name !== 'string' || typeof v.diffId !== 'string')
      throw new BadRequest('the server stream is corrupt: a volume record is incomplete');
    checkVolumeName(v.name);
    checkMountPath(v.mountPath);
    checkVolumeFree(compute, v);
    out.set(v.id, v);
  }
  return out;
}

export function checkVolumeFree(compute: ComputeService, v: Pick<VolumeMeta, 'id' | 'name'>): void {
  const here = compute.store.volumes.find(v.name) ?? compute.store.volumes.get(v.id);
  if (here)
    throw new Conflict(
      `the server's volume "${v.name}" cannot come here: a volume ${here.name === v.name ? `named "${v.name}"` : `with its id (named "${here.name}")`} exists on this host`,
    );
}

/** The source's server name is free here (or --name was given): checked early, and again at commit. */
function checkNameFree(compute: ComputeService, name: string, renamed: boolean): void {
  if (compute.store.servers.list({ name: `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$` }).length > 0) {
    throw new Conflict(
      renamed
        ? `a server named "${name}" already exists on this host: pick another --name`
        : `a server named "${name}" already exists on this host: pass --name NEW to import it under another name`,
    );
  }
}

/**
 * Read a whole stream (header to end frame) into a Staging. `onImage` runs once the image
 * frame is in (the receive protocol answers there). Throws, having removed its Staging,
 * on anything that is not a complete, intact stream.
 */
export async function readStream(
  compute: ComputeService,
  images: ImageService,
  r: ByteReader,
  opts: ImportOptions = {},
): Promise<StagedStream> {
  const header = checkHeader(await readFrame(r));
  const server = expect(await readFrame(r), 'S').meta as unknown as ServerMeta;
  const src = server.server;
  if (!src || typeof src.id !== 'string' || !UUID_RE.test(src.id) || typeof src.name !== 'string' || !server.flavor) {
    throw new BadRequest('the server stream is corrupt: its server record is incomplete');
  }
  const name = opts.name ?? src.name;
  checkServerName(name);
  checkNameFree(compute, name, opts.name !== undefined);
  const wantVolumes = checkVolumes(compute, server.volumes);
  compute.ports.checkArrival(server.ports);
  const image = expect(await readFrame(r), 'I').meta as unknown as ImageMeta;
  if (!Array.isArray(image.layers) || typeof image.id !== 'string')
    throw new BadRequest('the server stream is corrupt: its image record is incomplete');
  for (const l of image.layers) {
    hexOf(l.diffId);
    hexOf(l.blobDigest);
  }
  const staging = new Staging('import');
  try {
    const layers = new Map<string, Layered>();
    const volumes: StagedStream['volumes'] = new Map();
    let k = 0;
    for (;;) {
      const file = staging.path(`part${k++}`);
      let fd: number | undefined;
      let wanted: string | undefined;
      const f = await readFrame(r, (info, c) => {
        if (info.kind !== 'L' && info.kind !== 'W' && info.kind !== 'V') return;
        if (fd === undefined) {
          const diffId = String(info.meta.diffId);
          // a layer here already (the file form carries every layer): read past it
          if (info.kind === 'L' && (layers.has(diffId) || images.hasLayer(diffId))) return;
          wanted = diffId;
          fd = openSync(file, 'wx', 0o600);
        }
        for (let off = 0; off < c.length; ) off += writeSync(fd, c, off);
      }).finally(() => fd !== undefined && closeSync(fd));
      const frame = f ?? expect(f, 'W');
      if (frame.kind === 'V') {
        const v = wantVolumes.get(String(frame.meta.id));
        if (!v || volumes.has(v.id)) throw new BadRequest('the server stream is corrupt: a volume frame of no volume of its server');
        if (`sha256:${frame.payloadSha256}` !== v.diffId)
          throw new BadRequest(`the server stream is corrupt: volume "${v.name}" does not match its digest`);
        if (fd === undefined) closeSync(openSync(file, 'wx', 0o600));
        volumes.set(v.id, { file });
        continue;
      }
      if (frame.kind === 'W') {
        if (volumes.size !== wantVolumes.size)
          throw new BadRequest('the server stream is corrupt: a volume of its server is missing before its writable layer');
        const w = frame.meta as unknown as WritableMeta;
        if (`sha256:${frame.payloadSha256}` !== w.diffId)
          throw new BadRequest('the server stream is corrupt: its writable layer does not match its digest');
        if (fd === undefined) {
          // an empty payload never opened the file
          closeSync(openSync(file, 'wx', 0o600));
        }
        await opts.onWritable?.();
        let delta: StagedStream['delta'];
        const criu: CriuPart[] = [];
        // the deltas (pre-copy): the writable layer's, and a volume's (meta.volume); live
        // migration's CRIU images among them; then the end
        for (let n = 0; ; n++) {
          const dfile = staging.path(`delta${n}.tar`);
          let dfd: number | undefined;
          let next: FrameInfo | undefined;
          try {
            next = await readFrame(r, (info, c) => {
              if (info.kind !== 'D' && info.kind !== 'C') return;
              dfd ??= openSync(dfile, 'wx', 0o600);
              for (let off = 0; off < c.length; ) off += writeSync(dfd, c, off);
            });
          } finally {
            if (dfd !== undefined) closeSync(dfd);
          }
          if (next?.kind === 'C') {
            const dir = String(next.meta.dir);
            if (`sha256:${next.payloadSha256}` !== next.meta.digest || !/^[0-9]+$/.test(dir) || criu.at(-1)?.final)
              throw new BadRequest('the server stream is corrupt: its CRIU images do not match their digest');
            if (dfd === undefined) closeSync(openSync(dfile, 'wx', 0o600));
            const stdio = typeof next.meta.stdio === 'string' ? next.meta.stdio : undefined;
            criu.push({ file: dfile, dir, final: next.meta.final === true, ...(stdio ? { stdio } : {}) });
            continue;
          }
          if (next?.kind !== 'D') {
            expect(next, 'E');
            break;
          }
          if (`sha256:${next.payloadSha256}` !== next.meta.diffId || !Array.isArray(next.meta.deleted)) {
            throw new BadRequest('the server stream is corrupt: its writable layer delta does not match its digest');
          }
          if (dfd === undefined) closeSync(openSync(dfile, 'wx', 0o600));
          const d = { file: dfile, deleted: (next.meta.deleted as unknown[]).map(String) };
          if (next.meta.volume === undefined) {
            if (delta) throw new BadRequest('the server stream is corrupt: two deltas of its writable layer');
            delta = d;
          } else {
            const v = volumes.get(String(next.meta.volume));
            if (!v || v.delta) throw new BadRequest('the server stream is corrupt: a delta of no volume of its server');
            v.delta = d;
          }
        }
        return { header, server, image, layers, writable: { ...w, file }, delta, volumes, criu, staging, bytes: r.offset };
      }
      if (frame.kind !== 'L') throw new BadRequest(`the server stream is corrupt: a ${kindName(frame.kind)} frame among its layers`);
      if (wanted === undefined) continue;
      const l = frame.meta as unknown as ImageMeta['layers'][number];
      if (!image.layers.some((x) => x.diffId === l.diffId))
        throw new BadRequest(`the server stream is corrupt: layer ${l.diffId} is not one of its image's`);
      if (`sha256:${frame.payloadSha256}` !== l.blobDigest)
        throw new BadRequest(`the server stream is corrupt: layer ${l.diffId} does not match its digest`);
      const dir = staging.newDir();
      const ex = await extractLayer(fileStream(file), compressionOf(l.mediaType), dir, staging.path(`blob${k}`), {
        trusted: true,
        expectDiffId: l.diffId,
        expectBlobDigest: l.blobDigest,
      });
      unlinkSync(file);
      layers.set(l.diffId, { diffId: ex.diffId, blob: { ...ex.blob, mediaType: l.mediaType }, size: ex.size, dir });
    }
  } catch (err) {
    staging.remove();
    throw err;
  }
}

/** The image the server boots from here: this host's copy (by id, else a same-named one with the same layers), or one to make. */
function placeImage(images: ImageService, img: ImageMeta, notice: (l: string) => void): { id: string; name: string; create?: ImageMeta } {
  const diffIds = img.layers.map((l) => l.diffId).join(',');
  const byId = images.repo.get(img.id);
  if (byId) {
    if (byId.status !== 'active')
      throw new Conflict(`image ${img.id} (${byId.name}) is ${byId.status} on this host: the server cannot use it`);
    return { id: byId.id, name: byId.name };
  }
  const same = images.repo.allByName(img.name).find((i) => i.status === 'active');
  if (same && same.layers.join(',') === diffIds) return { id: same.id, name: same.name };
  if (!same) return { id: img.id, name: img.name, create: img };
  const name = `${img.name}-${img.id.slice(0, 8)}`;
  notice(`an image named "${img.name}" with other layers exists on this host: the server's image is recorded as "${name}"`);
  return { id: img.id, name, create: { ...img, name } };
}

/** Commit a staged stream (see the top of the file); the server ends SHUTOFF. */
export async function commitStaged(
  compute: ComputeService,
  images: ImageService,
  st: StagedStream,
  caller: Caller & ImageCaller,
  opts: ImportOptions = {},
): Promise<Imported> {
  const notice = opts.notice ?? (() => {});
  const store = compute.store;
  const src = st.server.server;
  const id = src.id;
  const name = opts.name ?? src.name;
  const network = src.network === 'novabox' ? 'novabox' : src.network === 'host' ? 'host' : 'none';
  const userns = src.userns === 'auto' ? 'auto' : 'host';
  const img = placeImage(images, st.image, notice);
  if (network === 'novabox') compute.network.check();
  const ports = compute.ports.checkArrival(st.server.ports);
  if (ports.length && network !== 'novabox')
    throw new BadRequest('the server stream is corrupt: published ports on a server without the bridge network');
  let actionId = 0;
  let madeImage = false;
  const hold = opts.action === 'migrate';
  // the tombstone of a server that left this host and comes back: the import takes its row
  // (and keeps its history); an undo puts it back as it was
  let tombstone: Server | undefined;
  const vols = st.server.volumes ?? [];
  const madeVolumes: string[] = [];
  const recordedVolumes: string[] = [];
  const undo = () => {
    removeServerFiles(id);
    compute.network.release(id);
    compute.idmaps.release(id);
    for (const v of madeVolumes) removeVolumeDir(v);
    store.tx(() => {
      store.ports.remove(id);
      // the volumes it recorded (a delete of the started server detached them first)
      for (const v of recordedVolumes) {
        const row = store.volumes.get(v);
        if (row && (row.serverId === id || row.serverId === null)) store.volumes.remove(v);
      }
      if (tombstone) {
        if (actionId) store.actions.removeFrom(id, actionId);
        store.servers.update(id, tombstone);
      } else if (store.servers.getAny(id)) store.servers.remove(id);
    });
    if (madeImage) images.delete(img.id, { ...caller, isAdmin: true });
  };
  try {
    store.tx(() => {
      checkNameFree(compute, name, opts.name !== undefined);
      const old = store.servers.getAny(id);
      if (old && !old.deleted) throw new Conflict(`server ${id} already exists on this host (named "${old.name}")`);
      tombstone = old;
      if (img.create) {
        images.adoptImage(
          { ...img.create, visibility: img.create.visibility as 'private', config: img.create.config as never },
          img.create.layers.map((l) => l.diffId),
          st.layers,
          caller,
        );
        madeImage = true;
      }
      const now = nowIso();
      const record: Parameters<typeof store.servers.insert>[0] = {
        ...src,
        id,
        name,
        projectId: caller.projectId,
        userId: caller.userId,
        imageRef: img.id,
        imageName: img.name,
        flavorId: st.server.flavor.id,
        flavor: st.server.flavor,
        vmState: 'building',
        // an arrival by `server receive` is held until the sender's commit (reconcile takes
        // it back if this process dies first: ComputeService.dropArrival)
        taskState: hold ? 'resize_finish' : 'spawning',
        powerState: POWER_STATE.NOSTATE,
        host: hostname(),
        fault: null,
        network,
        userns,
        taskOwnerPid: process.pid,
        taskOwnerStart: selfStart(),
        updatedAt: now,
        terminatedAt: null,
        deleted: false,
        restartCount: 0,
      };
      if (tombstone) store.servers.update(id, record);
      else store.servers.insert(record);
      if (network === 'novabox') {
        const want = st.server.fixedIp;
        let lease: { address: string } | undefined;
        if (want) {
          try {
            lease = compute.network.allocate('server', id, want);
          } catch {
            /* not in this subnet, or taken: a new one */
          }
        }
        if (!lease) {
          lease = compute.network.allocate('server', id);
          if (want)
            notice(
              `the fixed IP ${want} cannot be kept here (outside this host's subnet, or taken): server "${name}" has the address ${lease.address} here`,
            );
        }
      }
      if (userns === 'auto' && opts.idmap) {
        // a live arrival: the range its dump's user namespace has, or nothing
        if (!compute.idmaps.leaseExactly(id, opts.idmap))
          throw new Conflict(
            `server "${name}" cannot be migrated live: its id range (uids ${opts.idmap.uidBase}-${opts.idmap.uidBase + 65535}) was leased on the target host meanwhile; migrate it without --live`,
          );
      } else if (userns === 'auto') compute.idmaps.leaseFor(id);
      // its published ports (their rules are made at its start) and volumes, as a create records them
      compute.ports.record(id, ports);
      for (const v of vols) {
        checkVolumeFree(compute, v);
        store.volumes.insert({ id: v.id, name: v.name, projectId: caller.projectId, description: v.description ?? '', createdAt: now });
        recordedVolumes.push(v.id);
        compute.volumes.attachIn(id, v.id, v.mountPath, Boolean(v.readOnly));
      }
      const key = st.server.key;
      if (key && src.keyName) {
        let have: { publicKey: string } | undefined;
        try {
          have = store.keypairs.get(caller.userId, key.name);
        } catch {
          store.keypairs.insert({
            userId: caller.userId,
            name: key.name,
            type: key.type,
            publicKey: key.publicKey,
            fingerprint: key.fingerprint,
          });
        }
        if (have && have.publicKey !== key.publicKey)
          notice(`keypair "${key.name}" on this host holds another public key than the server's`);
      }
      actionId = store.actions.start(id, opts.action ?? 'import', { userId: caller.userId, projectId: caller.projectId }).id;
    });
  } catch (err) {
    try {
      releaseOwner(id); // an id range link taken before the transaction rolled back
    } catch {
      /* the next gc frees it */
    }
    throw err;
  }
  trace('import: recorded');
  const ev = store.actions.event(actionId, opts.action === 'migrate' ? 'compute_finish_resize' : 'compute_import_instance');
  try {
    const upper = st.staging.newDir('upper');
    const idmap = userns === 'auto' ? compute.idmaps.idmapOf(id) : undefined;
    await extractLayer(fileStream(st.writable.file), 'none', upper, st.staging.path('writable.blob'), {
      trusted: true,
      expectDiffId: st.writable.diffId,
      transform: idmap ? new TarIdShifter({ uidBase: idmap.uidBase, gidBase: idmap.gidBase, count: idmap.size }) : undefined,
    });
    const shift = idmap ? { uidBase: idmap.uidBase, gidBase: idmap.gidBase, count: idmap.size } : undefined;
    trace('import: writable layer unpacked');
    if (st.delta) await applyDelta(upper, st.delta.deleted, st.delta.file, shift);
    if (idmap) chownSync(upper, idmap.uidBase, idmap.gidBase);
    for (const v of vols) {
      // unpacked as the writable layer is (into the server's ids), then renamed into place
      const staged = st.volumes.get(v.id)!;
      const dir = st.staging.newDir(`volume-${v.id}`);
      await extractLayer(fileStream(staged.file), 'none', dir, st.staging.path(`volume-${v.id}.blob`), {
        trusted: true,
        expectDiffId: v.diffId,
        transform: shift ? new TarIdShifter(shift) : undefined,
      });
      if (staged.delta) await applyDelta(dir, staged.delta.deleted, staged.delta.file, shift);
      chownSync(dir, shift?.uidBase ?? 0, shift?.gidBase ?? 0);
      chmodSync(dir, typeof v.mode === 'number' ? v.mode & 0o7777 : 0o755);
      mkdirSync(volumesDir(), { recursive: true, mode: 0o700 });
      renameSync(dir, volumeDir(v.id));
      madeVolumes.push(v.id);
      if (shift) store.volumes.setOwner(v.id, shift.uidBase, shift.gidBase);
    }
    const d = serverDirs(id);
    mkdirSync(d.dir, { recursive: true, mode: 0o700 });
    renameSync(upper, d.upper);
    logLine(id, `server ${opts.action === 'migrate' ? 'migrated' : 'imported'} from host ${src.host || 'unknown'}`);
    ev('Success');
    const server = store.servers.update(id, {
      vmState: 'stopped',
      powerState: POWER_STATE.SHUTDOWN,
      ...(hold ? {} : { taskState: null, taskOwnerPid: null, taskOwnerStart: null }),
    });
    return { server, undo };
  } catch (err) {
    undo();
    throw err;
  }
}

/** `novabox server import`: read, commit, and start when asked (a start that fails leaves the server SHUTOFF, and says so). */
export async function importServer(
  compute: ComputeService,
  images: ImageService,
  r: ByteReader,
  caller: Caller & ImageCaller,
  opts: ImportOptions & { start?: boolean } = {},
): Promise<{ server: Server; bytes: number }> {
  const st = await readStream(compute, images, r, opts);
  try {
    const { server } = await commitStaged(compute, images, st, caller, opts);
    if (!opts.start) return { server, bytes: st.bytes };
    try {
      return { server: await compute.start(server.id, caller), bytes: st.bytes };
    } catch (err) {
      throw new Conflict(`server "${server.name}" was imported (SHUTOFF) but did not start: ${(err as Error).message}`, { cause: err });
    }
  } finally {
    st.staging.remove();
  }
}
