/**
 * The native executor's handshake and error path, driven directly through src/sys:
 * 'R' (run the ops) and 'G' (execve) on the GO pipe, {op index, errno} on failure, EOF on
 * execve, abort when GO is closed unsent at either gate; the monitor's own placement of a
 * plain-cloned init in its cgroup2 directory.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { skipEachIf } from '../helpers/skip.js';
import * as native from '../../src/sys/native.js';
import type { LaunchPlan } from '../../src/sys/ops.js';
import { errnoName } from '../../src/sys/errno.js';
import { EventReader, opFailedFirst } from '../../src/runtime/launch.js';
import { opFailure } from '../../src/runtime/container.js';
import { readProcStart } from '../../src/runtime/proc.js';

const isRoot = process.getuid?.() === 0;

function monitors(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'novabox-monitor';
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Every event left, up to the monitor's end; then the reader is closed. */
async function drain(events: EventReader) {
  const out = [];
  for (let e = await events.next(); e; e = await events.next()) out.push(e);
  events.close();
  return out;
}

async function launch(plan: LaunchPlan, go = true) {
  const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
  native.awaitInit(sp);
  const events = new EventReader(sp.eventsFd);
  if (go) native.release(sp, 'G');
  else closeSync(sp.goFd);
  const seen = await drain(events);
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

  it("runs the ops on 'R' alone: a failing op is reported before any 'G', and nothing runs or stays", async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['mount', 'pid'],
      tty: false,
      ops: [
        { op: 'mount', target: '/', flags: ['rec', 'private'] },
        { op: 'mkdir', path: join(dir, 'made'), mode: 0o755 },
        { op: 'mount', source: 'tmpfs', target: join(dir, 'missing/target'), fstype: 'tmpfs', flags: [] },
        { op: 'exec', file: '/bin/sh', searchPath: '', argv: ['sh', '-c', `touch ${dir}/ran`], env: [] },
      ],
    };
    const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
    native.release(sp, 'R');
    native.awaitInit(sp);
    const events = new EventReader(sp.eventsFd);
    const first = await events.next();
    expect(first?.type).toBe(3);
    expect(first?.a).toBe(2);
    expect(errnoName(first!.b)).toBe('ENOENT');
    // the init exits on its own, with no 'G'
    const exit = await events.next();
    expect(exit?.type).toBe(4);
    expect(native.waitStatusToExitCode(exit!.a).code).toBe(127); // ENOENT, as any failed op's
    // GO after the init is gone: EPIPE, which is not an error (false)
    expect(native.release(sp, 'G')).toBe(false);
    expect(await drain(events)).toEqual([]);
    expect(native.reap(sp.monitorPid)).toBe(0);
    expect(readdirSync(dir)).toEqual(['made']); // the ops before the failure ran, the command never
    expect(monitors()).not.toContain(sp.monitorPid);
  });

  it("stops at its execve gate when GO is closed after 'R': the ops ran, the command never does", async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      ops: [
        { op: 'mkdir', path: join(dir, 'made'), mode: 0o755 },
        { op: 'exec', file: '/bin/sh', searchPath: '', argv: ['sh', '-c', `touch ${dir}/ran`], env: [] },
      ],
    };
    const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
    native.release(sp, 'R');
    native.awaitInit(sp);
    for (let i = 0; i < 200 && !existsSync(join(dir, 'made')); i++) await new Promise((r) => setTimeout(r, 5));
    expect(existsSync(join(dir, 'made'))).toBe(true);
    await new Promise((r) => setTimeout(r, 50)); // at the gate by now (the command would have run)
    expect(existsSync(join(dir, 'ran'))).toBe(false);
    closeSync(sp.goFd);
    const events = new EventReader(sp.eventsFd);
    const seen = await drain(events);
    expect(seen.map((e) => e.type)).toEqual([2, 4]); // error pipe closed without a message
    expect(native.waitStatusToExitCode(seen[1].a).code).toBe(125);
    expect(native.reap(sp.monitorPid)).toBe(0);
    expect(readdirSync(dir)).toEqual(['made']);
  });

  it("after a CLI error between 'R' and 'G', names the op that failed first, else leaves the CLI's error", async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const failing: LaunchPlan = {
      namespaces: ['mount', 'pid'],
      tty: false,
      ops: [
        { op: 'mount', target: '/', flags: ['rec', 'private'] },
        { op: 'mount', source: 'tmpfs', target: join(dir, 'missing/target'), fstype: 'tmpfs', flags: [] },
        { op: 'exec', file: '/bin/true', searchPath: '', argv: ['true'], env: [] },
      ],
    };
    const fine: LaunchPlan = { namespaces: ['pid'], tty: false, ops: [failing.ops[2]] };
    for (const [plan, expected] of [
      [failing, /^mount tmpfs on .*missing\/target: no such file or directory \(op 2 of 3\)$/],
      [fine, undefined],
    ] as const) {
      const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
      native.release(sp, 'R');
      native.awaitInit(sp);
      const events = new EventReader(sp.eventsFd);
      const got = await opFailedFirst(plan, sp, () => events.next());
      if (expected) {
        expect(got?.failure.message).toMatch(expected);
        expect(got?.code).toBe(125);
      } else {
        expect(got).toBeUndefined(); // stopped at its execve gate: the CLI's own error stands
      }
      expect(sp.goFd).toBe(-1);
      const rest = await drain(events);
      expect(rest.map((e) => e.type)).toEqual([4]);
      expect(native.waitStatusToExitCode(rest[0].a).code).toBe(expected ? 127 : 125);
      expect(native.reap(sp.monitorPid)).toBe(0);
    }
  });

  it('refuses a malformed plan before starting anything', () => {
    expect(() =>
      native.spawn({ namespaces: [], tty: false, ops: [{ op: 'no-new-privs' }] }, { stdio: [0, 1, 2], tag: 'novabox-test/executor' }),
    ).toThrow(/nb_spawn: EINVAL \(cannot check the launch plan/);
  });

  it("late ops: the monitor clones with the plan but its ops; the init runs the whole plan written before 'R'", async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['mount', 'pid'],
      tty: false,
      ops: [
        { op: 'mount', target: '/', flags: ['rec', 'private'] },
        { op: 'mkdir', path: join(dir, 'made-by-the-init'), mode: 0o700 },
        { op: 'exec', file: 'sh', searchPath: '/usr/bin:/bin', argv: ['sh', '-c', 'exit 9'], env: [] },
      ],
    };
    const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor', lateOps: true });
    expect(sp.opsFd).toBeGreaterThan(2);
    // the monitor's part ran meanwhile: it cloned the init, which waits for 'R'
    const { pid } = native.awaitInit(sp);
    expect(readProcStart(pid)).toBeDefined();
    expect(existsSync(join(dir, 'made-by-the-init'))).toBe(false);
    native.sendOps(sp, plan);
    expect(sp.opsFd).toBe(-1);
    native.release(sp, 'R');
    native.release(sp, 'G');
    const events = new EventReader(sp.eventsFd, true); // read on this thread
    const seen = await drain(events);
    expect(seen.map((e) => e.type)).toEqual([2, 4]);
    expect(native.waitStatusToExitCode(seen[1].a).code).toBe(9);
    expect(existsSync(join(dir, 'made-by-the-init'))).toBe(true);
    expect(native.reap(sp.monitorPid)).toBe(0);
    expect(monitors()).not.toContain(sp.monitorPid);
  });

  it('late ops: a plan the init refuses is op -2, named as such, and the init never runs an op', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-exec-'));
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      ops: [
        { op: 'mkdir', path: join(dir, 'never'), mode: 0o700 },
        { op: 'exec', file: 'true', searchPath: '/usr/bin:/bin', argv: ['true'], env: [] },
      ],
    };
    for (const garbage of [Buffer.alloc(0), Buffer.alloc(128, 7)]) {
      const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor', lateOps: true });
      native.awaitInit(sp);
      writeSync(sp.opsFd, garbage);
      closeSync(sp.opsFd);
      sp.opsFd = -1;
      native.release(sp, 'G');
      const events = new EventReader(sp.eventsFd, true);
      const seen = await drain(events);
      expect(seen.map((e) => e.type)).toEqual([3, 4]);
      expect(seen[0].a).toBe(-2);
      expect(errnoName(seen[0].b)).toBe('EINVAL');
      expect(opFailure(plan, seen[0].a, seen[0].b).message).toBe('the container init refused its launch plan: invalid argument');
      expect(native.waitStatusToExitCode(seen[1].a).code).toBe(125);
      expect(native.reap(sp.monitorPid)).toBe(0);
    }
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('forwards signals from C while the main thread blocks in a read of the events', async () => {
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      ops: [
        {
          op: 'exec',
          file: 'sh',
          searchPath: '/usr/bin:/bin',
          argv: ['sh', '-c', 'trap "exit 7" USR2; while :; do sleep 0.05; done'],
          env: [],
        },
      ],
    };
    const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
    const { pid } = native.awaitInit(sp);
    const pidfd = native.pidfdOpen(pid);
    const events = new EventReader(sp.eventsFd, true);
    // the process's own handling first (libuv's handler), which the C one replaces and restores
    let onLoop = 0;
    const h = () => onLoop++;
    process.on('SIGUSR2', h);
    const stopOnLoop = () => process.off('SIGUSR2', h);
    const stop = native.forwardSignals(pidfd, [constants.signals.SIGUSR2]);
    try {
      native.release(sp, 'G');
      expect((await events.next())?.type).toBe(2);
      // signals this process while this thread is blocked below, from another process
      const killer = spawn('sh', ['-c', `sleep 0.3; kill -USR2 ${process.pid}`], { stdio: 'ignore' });
      const exit = await events.next(); // readSync: the event loop does not run meanwhile
      expect(exit?.type).toBe(4);
      expect(native.waitStatusToExitCode(exit!.a).code).toBe(7);
      await new Promise((r) => killer.once('exit', r));
    } finally {
      stop();
    }
    // after stop() the process's own handling is back: the loop's listener gets the next one
    process.kill(process.pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 50));
    stopOnLoop();
    expect(onLoop).toBe(1);
    closeSync(pidfd);
    expect(await events.next()).toBeNull();
    events.close();
    expect(native.reap(sp.monitorPid)).toBe(0);
  });
});

describe.skipIf(!isRoot)('monitor: console log and exit status (root)', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('copies the init output into the log, rotates it at the bound, and writes the status file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-log-'));
    const log = join(dir, 'console.log');
    const status = join(dir, 'exit-status');
    // 3000 lines of 100 bytes = 300 kB through a 64 kB bound: log + log.1 stay under 2 x 64 kB.
    const script = 'i=0; while [ $i -lt 3000 ]; do printf "%099d\\n" $i; i=$((i+1)); done; echo last-line >&2; exit 3';
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      logPath: log,
      logMaxBytes: 64 * 1024,
      statusPath: status,
      ops: [{ op: 'exec', file: 'sh', searchPath: '/usr/bin:/bin', argv: ['sh', '-c', script], env: [] }],
    };
    const { seen } = await launch(plan);
    expect(seen.map((e) => e.type)).toEqual([2, 4]);
    const text = readFileSync(log, 'utf8');
    const older = readFileSync(`${log}.1`, 'utf8');
    expect(text.length + older.length).toBeLessThanOrEqual(2 * 64 * 1024);
    expect(text.trimEnd().split('\n').at(-1)).toBe('last-line');
    expect(text.trimEnd().split('\n').at(-2)).toBe('0'.repeat(95) + '2999');
    // Rotation cuts at a write, not a line: log.1 + log read together lose nothing.
    // (the first line of log.1 may itself be the tail of a line rotated away earlier)
    const lines = (older + text).trimEnd().split('\n').slice(1, -1).map(Number);
    lines.forEach((n, i) => i > 0 && expect(n).toBe(lines[i - 1] + 1));
    expect(lines.at(-1)).toBe(2999);
    const [wait, when] = readFileSync(status, 'utf8').trim().split(' ').map(Number);
    expect(native.waitStatusToExitCode(wait)).toEqual({ code: 3 });
    expect(Math.abs(when - Date.now() / 1000)).toBeLessThan(60);
  });
});

/** The cgroup2 mount: /sys/fs/cgroup (pure v2) or a hybrid host's unified mount; undefined on pure v1. */
function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const dash = f.indexOf('-');
    if (dash > 0 && f[dash + 1] === 'cgroup2') return f[4];
  }
  return undefined;
}

describe.skipIf(!isRoot)('monitor: placement without clone3 (NB_PLAN_PLAIN_CLONE, root)', () => {
  const why = cgroup2Root() ? undefined : 'no cgroup2 hierarchy mounted (a v1-only host): no cgroup2 directory to place in';
  skipEachIf(why);
  let dir: string;
  let cg: string;
  afterEach(() => {
    if (why) return;
    rmSync(dir, { recursive: true, force: true });
    if (existsSync(cg)) rmdirSync(cg);
  });

  it('writes the init to cgroup.procs itself before its first op, and says it is placed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-place-'));
    cg = join(cgroup2Root()!, `novabox-test-place-${process.pid}`);
    mkdirSync(cg);
    const out = join(dir, 'out');
    const fd = openSync(out, 'w');
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      cgroupDir: cg,
      plainClone: true,
      ops: [{ op: 'exec', file: '/bin/cat', searchPath: '', argv: ['cat', '/proc/self/cgroup'], env: [] }],
    };
    const sp = native.spawn(plan, { stdio: [0, fd, 2], tag: 'novabox-test/executor' });
    closeSync(fd);
    native.release(sp, 'R');
    expect(native.awaitInit(sp).placed).toBe(true);
    native.release(sp, 'G');
    const events = new EventReader(sp.eventsFd);
    const seen = await drain(events);
    expect(native.reap(sp.monitorPid)).toBe(0);
    expect(seen.map((e) => e.type)).toEqual([2, 4]);
    expect(native.waitStatusToExitCode(seen[1].a).code).toBe(0);
    const cg2 = readFileSync(out, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    expect(cg2).toBe(`0::/novabox-test-place-${process.pid}`);
  });

  it('fails with NB_STAGE_PLACE when it cannot place the init, and the init never runs an op', async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-place-'));
    cg = join(dir, 'not-a-cgroup'); // a plain directory: no cgroup.procs
    mkdirSync(cg);
    const plan: LaunchPlan = {
      namespaces: ['pid'],
      tty: false,
      cgroupDir: cg,
      plainClone: true,
      ops: [
        { op: 'mkdir', path: join(dir, 'made'), mode: 0o755 },
        { op: 'exec', file: '/bin/true', searchPath: '', argv: ['true'], env: [] },
      ],
    };
    const sp = native.spawn(plan, { stdio: [0, 1, 2], tag: 'novabox-test/executor' });
    native.release(sp, 'R');
    expect(() => native.awaitInit(sp)).toThrow(/cannot place the container init in its cgroup: no such file or directory/i);
    closeSync(sp.goFd);
    closeSync(sp.eventsFd);
    expect(native.waitStatusToExitCode(native.reap(sp.monitorPid)!).code).toBe(1);
    expect(monitors()).not.toContain(sp.monitorPid);
    expect(readdirSync(dir)).toEqual(['not-a-cgroup']);
  });
});
