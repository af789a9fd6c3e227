/**
 * `novabox server migrate SERVER --to exec:COMMAND | ssh://[USER@]HOST`: a cold migration
 * over any byte pipe to `novabox server receive` on the other side (receive.ts draws
 * the protocol). Steps, each an event of the source's `migrate` instance action:
 *
 *   compute_prep_resize     stop (if ACTIVE), claim (task migrating), pack the writable layer
 *   compute_resize_instance offer the layer diff ids; send only those the target lacks,
 *                           then the writable layer; the target imports and starts it
 *   compute_confirm_resize  confirm; delete the server here
 *
 * On any failure before the target said it committed, the receiver takes everything back
 * (it is told by the end of its input) and the server here is started again if it was
 * ACTIVE: as it was before. The command waits for the receiver to exit either way.
 *
 * `--live` (live.ts): in place of the stop, CRIU pre-dump rounds while the server runs (while
 * the dirty set shrinks, at most predumpRounds) and the final dump, each sent as a `C` frame
 * (the final one after the delta); the target
 * restores the tree under its own monitor. After the final dump a failure restores the
 * server here from the same images (else starts it again).
 */
import { spawn, spawnSync } from 'node:child_process';
import { BadRequest, Conflict, NovaboxError } from '../../errors.js';
import type { Server } from '../../model/records.js';
import type { ImageCaller, ImageService } from '../../images/service.js';
import type { Caller, ComputeService } from '../servers.js';
import {
  FrameWriter,
  claimForExport,
  layerIds,
  prepareExport,
  refuseSizedVolumes,
  releaseClaim,
  sendParts,
  type ExportParts,
} from './export.js';
import { ByteReader, type Meta, readFrame } from './stream.js';
import { type Entry, listTree, packDelta, treeDelta } from './precopy.js';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupDriver } from '../../runtime/cgroups/index.js';
import { isRunning, serverDirs } from '../../runtime/server.js';
import { SEED_TARGET } from '../instance-data.js';
import { criuCheck } from '../../runtime/criu.js';
import { type DumpRound, dumpRound, liveRefusal, morePreDumps, PREDUMP_ROUNDS, readlinkOr } from './live.js';
import { volumeDir } from '../../runtime/volumes.js';
import { trace } from '../../util/trace.js';

function hashFile(file: string): string {
  const h = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.allocUnsafe(1 << 20);
    for (let n = readSync(fd, b); n > 0; n = readSync(fd, b)) h.update(b.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** syncfs(2) of the file system holding `path` (coreutils' `sync -f`); a failure only costs downtime. */
function syncFs(path: string): void {
  spawnSync('sync', ['-f', path], { stdio: 'ignore' });
}

/** The receive protocol's version: a receiver refuses another one in a sentence. */
export const PROTOCOL_VERSION = 1;

export interface MigrateOptions {
  to: string;
  /** `-o` options for ssh (an ssh:// target only), e.g. `IdentityFile=/root/.ssh/k` */
  sshOptions?: string[];
  /** how long to wait for the receiver to exit once its input is closed */
  exitTimeoutMs?: number;
  /** an ACTIVE server's writable layer is sent while it runs, then only what changed after the stop (default: true) */
  precopy?: boolean;
  /** SIGINT/SIGTERM of the CLI: give up as on a failure (the server here runs again) unless the target already committed */
  signal?: AbortSignal;
  /** live migration with CRIU: refused (nothing changes) unless `criu check` passes on both hosts */
  live?: boolean;
  /** live: the most pre-dump rounds before the final dump (default PREDUMP_ROUNDS; fewer once the dirty set stops shrinking) */
  predumpRounds?: number;
}

export interface MigrateResult {
  /** the server as the target reported it */
  target: { id: string; name: string; vmState: string };
  /** bytes written to the pipe (frames of the stream and the protocol) */
  bytes: number;
  /** size of the writable layer's tar */
  writableBytes: number;
  /** layers the target had (not sent) */
  layersSkipped: number;
  /** from the stop here to the server ACTIVE on the target; null for a SHUTOFF server */
  downtimeMs: number | null;
  /** pre-copy: how long the server was frozen while its writable layer was packed */
  frozenMs: number | null;
  /** pre-copy: bytes of the delta sent after the stop */
  deltaBytes: number | null;
  /** what the target said it could not keep (the address) */
  notices: string[];
  /** from the command's start to the target's confirmation */
  totalMs: number;
  /**
   * live: criu's pre-dump (all rounds) and final dump times, and the bytes of their images
   * (tars); each pre-dump round's time, tar bytes and memory pages written (bytes)
   */
  criu?: {
    predumpMs: number;
    dumpMs: number;
    predumpBytes: number;
    dumpBytes: number;
    rounds: { ms: number; bytes: number; pages: number }[];
    dumpPages: number;
  };
}

/** The source's range of a server in its own user namespace, as a live offer names it. */
function idmapWanted(compute: ComputeService, id: string): { uidBase: number; gidBase: number } {
  const m = compute.idmaps.idmapOf(id);
  if (!m) throw new NovaboxError('sys', `server ${id} runs with --userns auto but has no id range recorded here`);
  return { uidBase: m.uidBase, gidBase: m.gidBase };
}

/** The command that reaches `novabox server receive` on the other side. */
export function transportCommand(to: string, sshOptions: string[] = []): string[] {
  for (const o of sshOptions) {
    // ssh's own form, KEYWORD=VALUE (ssh_config(5)): nothing that ssh could read as another flag
    if (!/^[A-Za-z][A-Za-z0-9]*=\S/.test(o))
      throw new BadRequest(
        `invalid --ssh-option ${JSON.stringify(o)}: expected KEYWORD=VALUE as in ssh_config(5), e.g. IdentityFile=/root/.ssh/id_ed25519`,
      );
  }
  if (to.startsWith('exec:')) {
    if (sshOptions.length) throw new BadRequest('--ssh-option applies to an ssh:// target only (an exec: command carries its own options)');
    const cmd = to.slice(5).trim();
    if (!cmd) throw new BadRequest('invalid --to "exec:": expected exec:COMMAND');
    return ['sh', '-c', cmd];
  }
  const m = /^ssh:\/\/([A-Za-z0-9._-]+@)?([A-Za-z0-9._-]+|\[[0-9A-Fa-f:]+\])(?::(\d+))?$/.exec(to);
  if (m) {
    return [
      'ssh',
      '-o',
      'BatchMode=yes',
      ...sshOptions.flatMap((o) => ['-o', o]),
      ...(m[3] ? ['-p', m[3]] : []),
      '--',
      `${m[1] ?? ''}${m[2]}`,
      'novabox',
      'server',
      'receive',
    ];
  }
  throw new BadRequest(`invalid --to ${JSON.stringify(to)}: expected ssh://[USER@]HOST[:PORT] or exec:COMMAND`);
}

/** The target's address as --to names it (Nova's dest_host): the ssh host; none for exec:. */
export function targetHost(to: string): string | null {
  const m = /^ssh:\/\/(?:[^@]+@)?([^:[\]]+|\[[0-9A-Fa-f:]+\])/.exec(to);
  return m ? m[1]!.replace(/^\[|\]$/g, '') : null;
}

export async function migrateServer(
  compute: ComputeService,
  images: ImageService,
  ref: string,
  caller: Caller & ImageCaller,
  opts: MigrateOptions,
): Promise<MigrateResult> {
  const began = performance.now();
  const argv = transportCommand(opts.to, opts.sshOptions);
  const store = compute.store;
  compute.checkMigratable(ref, caller, opts.live ? 'os-migrateLive' : 'migrate');
  if (opts.live) {
    const c = criuCheck();
    if (!c.ok) throw new Conflict(`live migration needs CRIU on both hosts, and "criu check" fails on this host: ${c.reason}`);
    const s = compute.find(ref, caller);
    const refused = liveRefusal(s);
    if (refused) throw new Conflict(refused);
  }
  const first = compute.find(ref, caller);
  if (first.ephemeral) {
    throw new Conflict(`server "${first.name}" is ephemeral: its writable layer lives on a tmpfs inside the server and cannot be migrated`);
  }
  refuseSizedVolumes(compute, first, 'migrated');
  const wasActive = first.vmState === 'active';
  const action = store.actions.start(first.id, 'migrate', {
    requestId: caller.requestId,
    userId: caller.userId,
    projectId: caller.projectId,
  });
  // Nova's migration record, on the source: os-migrations lists it (confirmed, or error)
  const record = store.resizes.insertMigration({
    serverId: first.id,
    projectId: first.projectId,
    flavorId: first.flavorId,
    preVmState: first.vmState,
    host: first.host,
    destHost: targetHost(opts.to),
    ...(opts.live ? { kind: 'live-migration' as const } : {}),
  });
  let destCompute: string | null = null;
  let step = store.actions.event(action.id, 'compute_prep_resize');
  let stoppedAt = 0;
  let parts: ExportParts | undefined;
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> | undefined;
  let stderr = '';
  const why = (what: string) => {
    const line = stderr
      .split('\n')
      .find((l) => l.trim())
      ?.replace(/^novabox: /, '');
    return `the receiving side ended ${what}${line ? `: ${line}` : ' (no answer)'}`;
  };
  // the target runs it now: only the copy here is left to delete
  const confirm = (result: MigrateResult): MigrateResult => {
    const done = store.actions.event(action.id, 'compute_confirm_resize');
    try {
      compute.delete(first.id, caller);
      // its volumes went with it: the copies here (detached by the delete) go too
      for (const v of carried) {
        try {
          compute.volumes.delete(v.id);
        } catch (err) {
          result.notices.push(
            `volume "${v.name}" moved with the server, but its copy here could not be deleted: ${(err as Error).message}`,
          );
        }
      }
      done('Success');
    } catch (err) {
      done('Error', (err as Error).message);
      throw new NovaboxError(
        'sys',
        `server "${first.name}" runs on the target now, but its copy here could not be deleted: ${(err as Error).message}`,
      );
    }
    return result;
  };
  let result: MigrateResult;
  let carried: { id: string; name: string }[] = [];
  let committed = false;
  let frozenMs: number | null = null;
  let deltaBytes: number | null = null;
  // live: the CRIU rounds (the final one ends the tree here: from then on a failure restores it)
  let live: { base: string; pre: DumpRound[]; final?: DumpRound; dumped: boolean } | undefined;
  let stdio: string | undefined;
  const onAbort = () => {
    if (committed) return;
    child?.stdin?.destroy();
    child?.stdout?.destroy();
  };
  opts.signal?.addEventListener('abort', onAbort);
  const checkAbort = () => {
    if (opts.signal?.aborted) throw new NovaboxError('sys', `the migration of server "${first.name}" was interrupted`);
  };
  try {
    const precopy = wasActive && (opts.precopy !== false || opts.live === true);
    if (wasActive && !precopy) {
      stoppedAt = performance.now();
      await compute.stop(first.id, caller);
    }
    checkAbort();
    let s = claimForExport(compute, first.id, caller, 'migrate', precopy);
    const upper = serverDirs(s.id).upper;
    // pre-copy: the pack frozen (a file may not change under the packer), as a snapshot
    // freezes; the listing the delta is taken against in the same freeze, so that it names
    // exactly what the pack holds
    let before: Map<string, Entry> | undefined;
    const volumesBefore = new Map<string, Map<string, Entry>>();
    const aroundPack = precopy
      ? <T>(pack: () => T): T => {
          const facts = compute.facts(s.id);
          const cg = facts && isRunning(facts) ? cgroupDriver().open(facts.cgroupPath) : undefined;
          const t = performance.now();
          cg?.freeze();
          try {
            before = listTree(upper);
            for (const v of compute.volumes.ofServer(s.id)) volumesBefore.set(v.id, listTree(volumeDir(v.id)));
            return pack();
          } finally {
            cg?.thaw();
            frozenMs = Math.round(performance.now() - t);
          }
        }
      : undefined;
    parts = prepareExport(compute, images, s, { start: wasActive, aroundPack });
    if (opts.live) live = { base: parts.staging.path('criu'), pre: [], dumped: false };
    checkAbort();
    step('Success');
    step = store.actions.event(action.id, 'compute_resize_instance');
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolve) => {
      proc.on('close', () => resolve());
      proc.on('error', (e) => {
        stderr += `cannot run ${argv[0]}: ${e.message}\n`;
        resolve();
      });
    });
    proc.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString();
    });
    proc.stdin!.on('error', () => {
      /* a broken pipe: the protocol's answer (or its absence) says why */
    });
    const w = new FrameWriter(proc.stdin!);
    const r = new ByteReader(proc.stdout!);
    const answer = async (what: string): Promise<Meta> => {
      const f = await readFrame(r).catch(() => undefined);
      checkAbort();
      if (!f || f.kind !== 'A') {
        await exited;
        throw new NovaboxError('sys', why(what));
      }
      if (typeof f.meta.error === 'string') throw new Conflict(`the target refused the server: ${f.meta.error}`);
      return f.meta;
    };
    try {
      await w.frame('Q', {
        version: PROTOCOL_VERSION,
        offer: layerIds(parts),
        name: s.name,
        serverId: s.id,
        arch: process.arch,
        // what the target needs room for: each layer (blob and unpacked) and the writable layer
        sizes: Object.fromEntries(parts.image.layers.map((l) => [l.diffId, l.blobSize + l.size])),
        // the writable layer and the volumes, each staged then unpacked there
        writable: parts.writable.size + (parts.server.volumes ?? []).reduce((a, v) => a + v.size, 0),
        // refused up front there when taken: its published ports, its volumes' names and ids
        ports: parts.server.ports ?? [],
        volumes: (parts.server.volumes ?? []).map((v) => ({ id: v.id, name: v.name })),
        ...(opts.live ? { live: true } : {}),
        // live, in its own user namespace: CRIU restores it with these maps, so the target
        // must lease exactly this range (refused up front there when it cannot)
        ...(opts.live && s.userns === 'auto' ? { idmap: idmapWanted(compute, s.id) } : {}),
        // pre-copy: "say when all but the delta is staged" (see below)
        ...(precopy ? { staged: true } : {}),
      });
    } catch {
      /* a broken pipe: the answer's absence says it */
    }
    const offered = await answer('before it said which layers it has');
    if (typeof offered.host === 'string') destCompute = offered.host;
    const have = new Set((offered.have as string[]) ?? []);
    try {
      await sendParts(w, parts, have, !precopy);
      if (precopy) {
        // the target unpacks the layers it lacked as they come: the stop waits until it
        // has staged everything but the delta, so the downtime does not depend on the image
        if (offered.staged === true && (await answer('before it staged the server')).staged !== true)
          throw new NovaboxError('sys', 'the receiving side answered out of turn: it did not say it staged the server');
        // and this host's file system writes back now, while the server runs, what its
        // stop (the unmount) would otherwise write back during the downtime
        syncFs(upper);
        checkAbort();
        if (live) {
          // live: a pre-dump while it runs (its memory, sent meanwhile), then the final dump,
          // which ends the tree here: only the pages dirtied since go in it
          const pid = compute.facts(s.id)!.initPid;
          stdio = readlinkOr(`/proc/${pid}/fd/1`);
          const etcFiles = s.network === 'novabox';
          // its instance data's seed, bound from this host's state root: keyed, for the target to bind its own
          const seed = existsSync(serverDirs(s.id).seed) ? SEED_TARGET : undefined;
          // and its volumes, bound from this host's: keyed by id, for the target to bind its copies
          const volumes = compute.volumes.ofServer(s.id).map((v) => ({ id: v.id, target: v.mountPath! }));
          // rounds 1..k while the dirty set shrinks (each the parent of the next), each sent
          // as it is taken; the final dump is round k+1
          const max = opts.predumpRounds ?? PREDUMP_ROUNDS;
          while (
            morePreDumps(
              live.pre.map((p) => p.pages),
              max,
            )
          ) {
            const k = live.pre.length;
            const round = dumpRound(pid, live.base, String(k + 1), { pre: true, prev: k ? `../${k}` : undefined, etcFiles, seed, volumes });
            live.pre.push(round);
            await w.frame('C', round.meta, round.payload);
            trace(`migrate: pre-dump ${k + 1} sent (${round.pages} bytes of pages)`);
            checkAbort();
          }
          stoppedAt = performance.now();
          const l = live;
          const k = live.pre.length;
          live.final = dumpRound(pid, live.base, String(k + 1), {
            prev: k ? `../${k}` : undefined,
            etcFiles,
            seed,
            volumes,
            onDumped: () => (l.dumped = true),
          });
          trace('migrate: dumped');
        } else {
          // the server ran meanwhile: stop it, then send only what changed
          releaseClaim(compute, s.id);
          stoppedAt = performance.now();
          await compute.stop(s.id, caller);
          trace('migrate: stopped');
          s = claimForExport(compute, s.id, caller, 'migrate');
        }
        const after = listTree(upper);
        const d = treeDelta(before!, after);
        const file = parts.staging.path('delta.tar');
        const idmap = s.userns === 'auto' ? compute.idmaps.idmapOf(s.id) : undefined;
        packDelta(upper, d.changed, file, after, idmap ? { uidBase: idmap.uidBase, gidBase: idmap.gidBase, count: idmap.size } : undefined);
        const size = statSync(file).size;
        deltaBytes = size;
        await w.frame('D', { diffId: `sha256:${hashFile(file)}`, deleted: d.deleted, changed: d.changed.length }, { file, size });
        // and each volume's (its files in the ids of the range that used it last)
        for (const v of parts.server.volumes ?? []) {
          const row = store.volumes.get(v.id)!;
          const dir = volumeDir(v.id);
          const now = listTree(dir);
          const vd = treeDelta(volumesBefore.get(v.id)!, now);
          const vf = parts.staging.path(`delta-${v.id}.tar`);
          const vs = row.uidBase || row.gidBase ? { uidBase: row.uidBase, gidBase: row.gidBase, count: 65536 } : undefined;
          packDelta(dir, vd.changed, vf, now, vs);
          const n = statSync(vf).size;
          deltaBytes += n;
          await w.frame(
            'D',
            { volume: v.id, diffId: `sha256:${hashFile(vf)}`, deleted: vd.deleted, changed: vd.changed.length },
            { file: vf, size: n },
          );
        }
        if (live?.final) await w.frame('C', { ...live.final.meta, final: true, ...(stdio ? { stdio } : {}) }, live.final.payload);
        await w.frame('E', {});
        trace('migrate: delta sent');
      }
    } catch (err) {
      await answer('while the server was sent'); // its error, if it gave one
      throw err;
    }
    const ok = await answer('before it confirmed the import');
    trace('migrate: target ACTIVE');
    const downtimeMs = wasActive ? Math.round(performance.now() - stoppedAt) : null;
    await w.frame('Q', { commit: true });
    await answer('before it confirmed the migration');
    committed = true;
    store.resizes.setStatus(record.id, 'confirmed', { compute: destCompute, host: null });
    proc.stdin!.end();
    await exited;
    step('Success');
    result = {
      target: ok.server as MigrateResult['target'],
      bytes: w.bytes,
      writableBytes: parts.writable.size,
      layersSkipped: have.size,
      downtimeMs,
      frozenMs,
      deltaBytes,
      notices: (ok.notices as string[]) ?? [],
      totalMs: Math.round(performance.now() - began),
      ...(live?.final
        ? {
            criu: {
              predumpMs: live.pre.reduce((n, p) => n + p.ms, 0),
              dumpMs: live.final.ms,
              predumpBytes: live.pre.reduce((n, p) => n + p.payload.size, 0),
              dumpBytes: live.final.payload.size,
              rounds: live.pre.map((p) => ({ ms: p.ms, bytes: p.payload.size, pages: p.pages })),
              dumpPages: live.final.pages,
            },
          }
        : {}),
    };
    carried = parts.server.volumes ?? [];
    parts.staging.remove();
    parts = undefined;
    releaseClaim(compute, first.id);
  } catch (caught) {
    const err =
      opts.signal?.aborted && !(caught instanceof Conflict)
        ? new NovaboxError('sys', `the migration of server "${first.name}" was interrupted`)
        : caught;
    step('Error', (err as Error).message);
    store.resizes.setStatus(record.id, 'error', { compute: destCompute, host: null });
    // the receiver takes everything back when its input ends; wait for it
    if (child) {
      child.stdin?.end();
      // nothing more is read from it: an unread answer must not hold its close back
      child.stdout?.destroy();
      const timer = setTimeout(() => child!.kill('SIGKILL'), opts.exitTimeoutMs ?? 30_000);
      await exited;
      clearTimeout(timer);
    }
    let back: Error | undefined;
    if (live?.dumped) {
      // the final dump ended the tree here: the same images bring it back, as it was
      try {
        await compute.restoreClaimed(first.id, join(live.base, live.final!.meta.dir), stdio);
      } catch (e) {
        back = e as Error;
      }
    }
    parts?.staging.remove();
    releaseClaim(compute, first.id);
    if (back) {
      // not restored: started again from its writable layer, as a cold migration's failure does
      try {
        // a dead tree reads as SHUTOFF already (reconcile); else the stop ends what is left
        if (compute.find(first.id, caller).vmState !== 'stopped') await compute.stop(first.id, caller);
        await compute.start(first.id, caller);
      } catch (e) {
        throw new NovaboxError(
          'sys',
          `${(err as Error).message}; and server "${first.name}" could not be restored here (${back.message}) nor started again: ${(e as Error).message}`,
          { cause: err },
        );
      }
    }
    if (wasActive && compute.store.servers.get(first.id)?.vmState === 'stopped') {
      try {
        await compute.start(first.id, caller);
      } catch (e) {
        throw new NovaboxError(
          'sys',
          `${(err as Error).message}; and server "${first.name}" did not start again here: ${(e as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return confirm(result);
}

export type { Server };
