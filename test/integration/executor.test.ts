/**
 * The native executor's handshake and error path, driven directly through src/sys:
 * GO, {op index, errno} on failure, EOF on execve, abort when GO is closed unsent.
 */
import { closeSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as native from '../../src/sys/native.js';
import type { LaunchPlan } from '../../src/sys/ops.js';
import { errnoName } from '../../src/sys/errno.js';
import { EventReader } from '../../src/runtime/run.js';
import { readProcStart } from '../../src/runtime/proc.js';

const isRoot = process.getuid?.() === 0;

function monitors(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'novabox-monitor';
    } catch {
      return false;
    }
  }).map(Number);
}

async function launch(plan: LaunchPlan, go = true) {
  const sp = native.spawn(plan, { stdio: [0, 1, 2] });
  native.awaitInit(sp);
  const events = new EventReader(sp.eventsFd);
  if (go) writeSync(sp.goFd, 'G');
  closeSync(sp.goFd);
  const seen = [];
  for (let e = await events.next(); e; e = await events.next()) seen.push(e);
  events.close();
  const monitorStatus = native.reap(sp.monitorPid);
  return { sp, seen, monitorStatus };
}

describe.skipIf(!isRoot)('native executor (root)', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reports the failing op index and errno, then the exit, and leaves no process', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['mount', 'pid', 'uts', 'ipc', 'net'],
      tty: false,
      ops: [
        { op: 'mount', target: '/', flags: ['rec', 'private'] },
        { op: 'mount', source: 'tmpfs', target: dir, fstype: 'tmpfs', flags: [] },
        { op: 'mount', source: 'tmpfs', target: join(dir, 'missing/target'), fstype: 'tmpfs', flags: [] },
        { op: 'exec', file: '/bin/true', searchPath: '/bin', argv: ['true'], env: [] },
      ],
    };
    const { sp, seen, monitorStatus } = await launch(plan);
    expect(seen.map((e) => e.type)).toEqual([3, 4]);
    expect(seen[0].a).toBe(2);
    expect(errnoName(seen[0].b)).toBe('ENOENT');
    expect(native.waitStatusToExitCode(seen[1].a).code).toBe(127);
    expect(monitorStatus).toBe(0);
    expect(readProcStart(sp.initPid)).toBeUndefined();
    expect(monitors()).not.toContain(sp.monitorPid);
    // The tmpfs was mounted in the container's mount namespace only.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
  });

  it('sends EXEC on a successful execve and the wait status at exit', async () => {
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      ops: [{ op: 'exec', file: 'sh', searchPath: '/usr/bin:/bin', argv: ['sh', '-c', 'exit 7'], env: [] }],
    };
    const { seen } = await launch(plan);
    expect(seen.map((e) => e.type)).toEqual([2, 4]);
    expect(native.waitStatusToExitCode(seen[1].a)).toEqual({ code: 7 });
  });

  it('aborts the init before its first op when GO is closed without a byte', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['mount', 'pid'],
      tty: false,
      ops: [
        { op: 'mkdir', path: join(dir, 'made'), mode: 0o755 },
        { op: 'exec', file: '/bin/true', searchPath: '', argv: ['true'], env: [] },
      ],
    };
    const { seen } = await launch(plan, false);
    expect(seen.map((e) => e.type)).toEqual([2, 4]); // error pipe closed without a message
    expect(native.waitStatusToExitCode(seen[1].a).code).toBe(125);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a malformed plan before starting anything', () => {
    expect(() =>
      native.spawn({ namespaces: [], tty: false, ops: [{ op: 'no-new-privs' }] }, { stdio: [0, 1, 2] }),
    ).toThrow(/nb_spawn: EINVAL \(cannot check the launch plan/);
  });
});
