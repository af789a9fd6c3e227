/**
 * `novabox server receive`: the target's half of `server migrate`, speaking on stdin and
 * stdout (docs/server-stream.md, "The receive protocol"):
 *
 *   sender                                   receiver
 *   Q {offer: diff ids, name, serverId} ──▶  checks name, id, architecture
 *                                       ◀──  A {have: diff ids here, host} | A {error}
 *   H S I L(only those not had) W E     ──▶  reads into a Staging, checks every digest,
 *     (live: W C D C E, the CRIU images)     commits (SHUTOFF), starts if H says so
 *                                            (live: restores the final dump instead)
 *                                       ◀──  A {ok, server} | A {error}
 *   Q {commit}                          ──▶  keeps it
 *                                       ◀──  A {committed}
 *
 * Anything else after `ok` (end of input, a broken pipe, a frame that is no commit) takes
 * the server back: stopped, records, leases and files removed, the image too if this
 * receive made it. So the target keeps nothing unless the sender heard `ok` and said so.
 * Until the commit the server is held (task resize_finish, owned by this process): if this
 * process is killed outright, the next command's reconcile takes it back (but the image).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import { BadRequest, Conflict, NovaboxError } from '../../errors.js';
import type { Server } from '../../model/records.js';
import type { ImageCaller, ImageService } from '../../images/service.js';
import type { Caller, ComputeService } from '../servers.js';
import { FrameWriter } from './export.js';
import { type StagedStream, checkVolumeFree, commitStaged, readStream } from './import.js';
import { type ByteReader, readFrame } from './stream.js';
import { stateRoot } from '../../util/paths.js';
import { testPause } from '../../util/test-pause.js';
import { criuCheck } from '../../runtime/criu.js';
import { trace } from '../../util/trace.js';

const MiB = 2 ** 20;

/**
 * The CRIU image directories of a live migration unpacked side by side under the staging
 * dir (each tar holds its directory, as the dump's --prev-images-dir links them: `k+1/parent`
 * is `../k`); the final dump's directory.
 */
function unpackCriu(st: StagedStream): string {
  const base = st.staging.path('criu');
  mkdirSync(base, { mode: 0o700 });
  for (const p of st.criu) {
    const r = spawnSync('tar', ['-x', '-f', p.file, '-C', base, '--no-same-owner', '--', p.dir], { encoding: 'utf8' });
    if (r.status !== 0)
      throw new NovaboxError('sys', `cannot unpack the CRIU images ${p.dir}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
  return join(base, st.criu.at(-1)!.dir);
}

/**
 * Refuses a server the target has no room for, before anything is sent: the layers it
 * lacks (blob and unpacked) and the writable layer twice (its tar staged, then unpacked),
 * against the free space of the state root's file system.
 */
function checkRoom(meta: Record<string, unknown>, have: string[]): void {
  const sizes = (meta.sizes ?? {}) as Record<string, unknown>;
  let need = 2 * Number(meta.writable ?? 0) + MiB;
  for (const [d, n] of Object.entries(sizes)) if (!have.includes(d)) need += Number(n) || 0;
  let free: number;
  try {
    const st = statfsSync(stateRoot());
    free = st.bavail * st.bsize;
  } catch {
    return;
  }
  if (need > free) {
    throw new Conflict(
      `this host has ${Math.floor(free / MiB)} MiB free in ${stateRoot()} and the server needs about ${Math.ceil(need / MiB)} MiB`,
    );
  }
}

/** An error's sentence for the sender: a full disk said as such (the estimate above may fall short). */
function sentence(err: unknown): string {
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC' || /no space left on (the )?device/i.test((err as Error).message)) {
    return `this host ran out of space in ${stateRoot()} while it received the server; it kept nothing`;
  }
  return (err as Error).message;
}

/** The receiver's own error (its stderr): the same sentence as the sender's for a full disk. */
function said(err: unknown): unknown {
  const s = sentence(err);
  return s === (err as Error).message ? err : new NovaboxError('sys', s, { cause: err });
}

export async function receiveServer(
  compute: ComputeService,
  images: ImageService,
  r: ByteReader,
  out: Writable,
  caller: Caller & ImageCaller,
  signal?: AbortSignal,
): Promise<Server | undefined> {
  const w = new FrameWriter(out);
  const answerError = async (err: unknown) => {
    try {
      await w.frame('A', { error: signal?.aborted ? 'the receiver was interrupted; it kept nothing' : sentence(err) });
      await w.flush();
    } catch {
      /* the sender is gone */
    }
  };
  let notices: string[] = [];
  let staged = false;
  let live = false;
  let want: { uidBase: number; gidBase: number } | undefined;
  try {
    const q = await readFrame(r);
    if (!q || q.kind !== 'Q' || !Array.isArray(q.meta.offer))
      throw new BadRequest('the sender did not start with an offer: it is not a novabox server migrate');
    const version = q.meta.version ?? 1;
    if (version !== 1) {
      throw new BadRequest(
        `the sender speaks version ${String(version)} of the migrate protocol and this host's novabox version 1: install the same novabox on both hosts`,
      );
    }
    if (q.meta.arch !== process.arch)
      throw new BadRequest(`the server is of a linux/${String(q.meta.arch)} host; this host is linux/${process.arch}`);
    if (q.meta.live === true) {
      live = true;
      const c = criuCheck();
      if (!c.ok) throw new Conflict(`live migration needs CRIU on both hosts, and "criu check" fails on the target host: ${c.reason}`);
    }
    const name = String(q.meta.name);
    // live in its own user namespace: restored with the dumped maps, so only that range
    // will do here (no other one to fall back on, as an address has)
    if (live && q.meta.idmap !== undefined) {
      const m = q.meta.idmap as { uidBase?: unknown; gidBase?: unknown } | null;
      if (!m || !Number.isSafeInteger(m.uidBase) || !Number.isSafeInteger(m.gidBase))
        throw new BadRequest("the sender's offer is corrupt: its id range is not a pair of numbers");
      want = { uidBase: m.uidBase as number, gidBase: m.gidBase as number };
      if (!compute.idmaps.isFree(want))
        throw new Conflict(
          `server "${name}" cannot be migrated live: its id range (uids ${want.uidBase}-${want.uidBase + 65535}, gids ${want.gidBase}-${want.gidBase + 65535}) is not free on the target host (leased there, or not in root's /etc/subuid and /etc/subgid), and CRIU restores its user namespace with exactly those ids; migrate it without --live`,
        );
    }
    if (compute.store.servers.list({}).some((s) => s.name === name)) {
      throw new Conflict(`a server named "${name}" already exists on the target host`);
    }
    const old = compute.store.servers.getAny(String(q.meta.serverId));
    if (old && !old.deleted) throw new Conflict(`server ${old.id} already exists on the target host (named "${old.name}")`);
    // its published ports free here, no volume of its volumes' names or ids here
    compute.ports.checkArrival(q.meta.ports);
    if (q.meta.volumes !== undefined && !Array.isArray(q.meta.volumes))
      throw new BadRequest("the sender's offer is corrupt: its volumes are not a list");
    for (const v of (q.meta.volumes ?? []) as { id: string; name: string }[])
      checkVolumeFree(compute, { id: String(v?.id), name: String(v?.name) });
    const have = (q.meta.offer as unknown[]).map(String).filter((d) => images.hasLayer(d));
    checkRoom(q.meta, have);
    // pre-copy: the sender stops its server only once this host has staged all but the
    // delta (a layer still being unpacked here would otherwise count in the downtime)
    staged = q.meta.staged === true;
    await w.frame('A', { have, host: hostname(), ...(staged ? { staged: true } : {}) });
    await w.flush();
  } catch (err) {
    await answerError(err);
    throw said(err);
  }
  let undo: (() => void) | undefined;
  let server: Server | undefined;
  try {
    const st = await readStream(compute, images, r, {
      action: 'migrate',
      onWritable: staged
        ? async () => {
            await w.frame('A', { staged: true });
            await w.flush();
          }
        : undefined,
    });
    trace('receive: stream read');
    try {
      const imp = await commitStaged(compute, images, st, caller, {
        action: 'migrate',
        notice: (l) => notices.push(l),
        ...(want ? { idmap: want } : {}),
      });
      undo = imp.undo;
      server = imp.server;
      // held until the commit (task resize_finish): if this process dies first (kill -9),
      // reconcile takes it back
      trace('receive: committed');
      if (live) {
        const final = st.criu.at(-1);
        if (!final?.final) throw new BadRequest("the sender's live migration carries no final CRIU dump: the server was taken back");
        server = await compute.restoreArrival(server.id, caller, unpackCriu(st), final.stdio);
      } else if (st.header.start) server = await compute.startArrival(server.id, caller);
      trace('receive: started');
    } finally {
      st.staging.remove();
    }
    await w.frame('A', { ok: true, server: { id: server.id, name: server.name, vmState: server.vmState }, notices });
    await w.flush();
    testPause('receive-ok');
    notices = [];
    const c = await readFrame(r);
    if (!c || c.kind !== 'Q' || c.meta.commit !== true)
      throw new BadRequest('the sender did not confirm the migration: the server was taken back');
    server = compute.settleArrival(server.id);
    await w.frame('A', { committed: true });
    await w.flush();
    return server;
  } catch (err) {
    if (undo) {
      try {
        // a started server: its container, cgroup and veth go as a delete takes them
        if (server && compute.store.servers.get(server.id)?.vmState !== 'stopped') compute.delete(server.id, caller, { force: true });
      } catch {
        /* undo removes what it can */
      }
      undo();
    }
    await answerError(err);
    throw said(err);
  }
}
