/**
 * `server image create` (Nova createImage): a new image = the server's image layers +
 * one new layer packed from the server's writable (upper) directory. Only the upper dir
 * is read, so the cost grows with what changed, never with the image size.
 *
 * A running server is frozen (cgroup freezer) only while its upper dir is synced
 * (syncfs) and packed, then thawed in a finally, even when packing fails; the freeze
 * itself gives up after the driver's timeout (2 s) and thaws. A paused server stays
 * paused. The image passes queued -> saving -> active; the server's task_state is
 * image_snapshot meanwhile, and an instance action `createImage` records the outcome.
 */
import { existsSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ComputeService } from './servers.js';
import { POWER_STATE } from '../model/states.js';
import { Conflict } from '../errors.js';
import { cgroupDriver } from '../runtime/cgroups/index.js';
import { isRunning, serverDirs } from '../runtime/server.js';
import { selfStart } from '../runtime/proc.js';
import * as native from '../sys/native.js';
import { trace } from '../util/trace.js';
import { Staging, packLayer, packLayerAsync, removeStagingFile, stagingFile, type PackedLayer } from '../images/layers.js';
import type { ImageRecord } from '../images/records.js';
import type { ImageCaller, ImageService } from '../images/service.js';

let gnuTar: { path: string; found: boolean } | undefined;

/** GNU tar on PATH (not busybox's applet, which keeps no xattrs); looked up once per PATH (serve snapshots many times). */
export function hasGnuTar(): boolean {
  const path = process.env.PATH || '/usr/bin:/bin';
  if (gnuTar?.path !== path) gnuTar = { path, found: findGnuTar(path) };
  return gnuTar.found;
}

function findGnuTar(path: string): boolean {
  for (const dir of path.split(':')) {
    const p = join(dir || '.', 'tar');
    if (!existsSync(p)) continue;
    try {
      return basename(realpathSync(p)) !== 'busybox';
    } catch {
      return false;
    }
  }
  return false;
}

export interface SnapshotRequest {
  server: string;
  name: string;
  properties?: Record<string, string>;
  /** called with the new image's record as soon as it exists (the API answers 202 with its id) */
  onRecord?: (rec: ImageRecord) => void;
  /**
   * pack on this thread (the CLI: nothing else to do meanwhile, and no libuv thread pool
   * to start, ~0.5 ms); else on the pool, so that `novabox serve` keeps answering
   */
  inline?: boolean;
  /**
   * Nova's createBackup: the image is a backup (image_type=backup, backup_type), the
   * server's task is image_backup, and once it is active only the `rotation` newest
   * backups of the server of that type are kept (0: none).
   */
  backup?: { type: string; rotation: number };
}

export async function snapshotServer(
  compute: ComputeService,
  images: ImageService,
  req: SnapshotRequest,
  caller: ImageCaller,
): Promise<ImageRecord> {
  const s = compute.find(req.server, caller);
  trace('server found');
  if (s.ephemeral) {
    throw new Conflict(`server "${s.name}" is ephemeral: its writable layer lives on a tmpfs inside the server and cannot be snapshotted`);
  }
  const store = compute.store;
  const baseOf = (srv: { imageRef: string; imageName: string }) => images.repo.get(srv.imageRef) ?? images.repo.byName(srv.imageName);
  // a server of the built-in image made before the image store existed: record busybox
  // now, outside the claim's transaction (it packs a layer)
  if (!baseOf(s) && s.imageName === 'busybox') images.ensureBuiltin();
  // ONE commit for the claim on the server, its instance action and the new image's
  // record, saving and owned by this process (a cold CLI pays per commit). Anything
  // refused here (busy server, taken or bad name, base not in the store) changes nothing.
  const { cur, base, event, rec } = store.tx(() => {
    const cur = store.servers.transition(s.id, {
      from: ['active', 'stopped', 'paused', 'suspended'],
      action: req.backup ? 'createBackup' : 'createImage',
      to: { taskState: req.backup ? 'image_backup' : 'image_snapshot', taskOwnerPid: process.pid, taskOwnerStart: selfStart() },
    });
    const base = baseOf(cur);
    if (!base || base.status !== 'active') {
      throw new Conflict(`the image of server "${cur.name}" (${cur.imageName}) is not in the image store: it cannot be snapshotted`, {
        hint: `rebuild the server on an image of the store first ("novabox server rebuild --image IMAGE ${cur.name}")`,
      });
    }
    const action = store.actions.start(s.id, req.backup ? 'createBackup' : 'createImage', {
      userId: caller.userId,
      projectId: caller.projectId,
      requestId: (caller as { requestId?: string }).requestId,
    });
    const event = store.actions.event(action.id, 'compute_snapshot_instance');
    // a systemd server's snapshot boots systemd too (its image's property, or its --init)
    const own = { ...(cur.init === 'systemd' ? { os_init: 'systemd' } : {}), ...(req.properties ?? {}) };
    const props = req.backup ? { ...own, image_type: 'backup', backup_type: req.backup.type } : own;
    const rec = images.snapshotRecord(req.name, base, cur, caller, props);
    images.markSaving(rec.id);
    return { cur, base, event, rec };
  });
  const finish = () => store.servers.update(s.id, { taskState: null, taskOwnerPid: null, taskOwnerStart: null });
  let staging: Staging | undefined;
  let blob: string | undefined;
  try {
    req.onRecord?.(rec);
    // made after the claim: a staging file or dir of a snapshot always has its (saving)
    // record. The tar alone is a file under tmp/; a dir only for the mirror copy (below).
    if (!hasGnuTar()) staging = new Staging('snap');
    blob = staging ? staging.path('blob') : stagingFile('snap');
    trace('snapshot claimed');
    const facts = compute.facts(s.id);
    const mirror = staging ? staging.newDir() : null;
    const frozenByUs = cur.vmState === 'active' && cur.powerState === POWER_STATE.RUNNING && isRunning(facts);
    const cg = frozenByUs ? cgroupDriver().open(facts!.cgroupPath) : undefined;
    let thawed = false;
    const thaw = () => {
      if (cg && !thawed) {
        thawed = true;
        cg.thaw();
      }
    };
    let packed: PackedLayer;
    native.preload(); // koffi and the library load (~2 ms) before the freeze, not inside it
    cg?.freeze();
    trace('frozen');
    try {
      // the tar only: the layer's directory is made from it on first boot (materialize.ts),
      // which extracts with GNU tar; without it (busybox-only systems) the copy is made now
      const upper = serverDirs(s.id).upper;
      // a server in its own user namespace wrote host ids of its range: the image gets its
      // own ids back, so that it boots with the same owners in any range, or as --userns host
      const idmap = cur.userns === 'auto' ? compute.idmaps.idmapOf(s.id) : undefined;
      const shift = idmap ? { uidBase: idmap.uidBase, gidBase: idmap.gidBase, count: idmap.size } : undefined;
      packed = req.inline ? packLayer(upper, blob, mirror, true, shift) : await packLayerAsync(upper, blob, mirror, true, thaw, shift);
    } finally {
      thaw();
    }
    trace('packed');
    // the image active, the action's outcome and the server's task cleared: one commit
    const img = store.tx(() => {
      const img = images.commitSnapshot(rec.id, base, { ...packed, dir: mirror ?? undefined });
      event('Success');
      finish();
      return img;
    });
    trace('committed');
    if (req.backup) images.rotateBackups(s.id, req.backup.type, req.backup.rotation, caller);
    return img;
  } catch (err) {
    // a failure while saving leaves a killed image, as Glance does; an image deleted
    // while it was being saved is simply gone (nothing was installed)
    const gone = !images.repo.get(rec.id);
    store.tx(() => {
      event('Error', gone ? 'the image was deleted while it was being saved' : (err as Error).message);
      finish();
      images.failSnapshot(rec.id);
    });
    throw err;
  } finally {
    if (staging) staging.remove();
    else if (blob) removeStagingFile(blob);
  }
}
