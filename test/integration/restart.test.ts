/**
 * Restart policies for real: a crashing command is restarted by its server's monitor
 * (it starts `novabox server _exited` once the init is reaped) with a backoff and a cap,
 * each restart an instance action with the exit status; a stop is no crash; and a
 * simulated host reboot (every monitor and server process killed, the recorded boot id
 * changed) brings back, through `autostart run`, the servers whose policy asks for it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DatabaseConstructor } from '../../src/store/sqlite.js';
import { census, type Census } from '../helpers/census.js';
import { missingCommands } from '../helpers/skip.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';

const Database = Sqlite as unknown as DatabaseConstructor;
const isRoot = process.getuid?.() === 0;
const noUmoci = missingCommands(['umoci']).length > 0;

describe.skipIf(!isRoot || noUmoci)('restart policies (root, real servers)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root, timeoutMs: 60_000 });
  const show = async (name: string) => JSON.parse((await nb(['server', 'show', name, '-f', 'json'])).stdout) as Record<string, unknown>;
  const actions = async (name: string) =>
    (
      JSON.parse((await nb(['server', 'event', 'list', name, '-f', 'json'])).stdout) as { Action: string; Message: string | null }[]
    ).reverse();
  /** `_exited` processes of this root still running (the monitor's hook) */
  const hooks = () =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return (
            readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('_exited') && readFileSync(`/proc/${p}/environ`, 'utf8').includes(root)
          );
        } catch {
          return false;
        }
      });
  const settle = async (ok: () => Promise<boolean>, ms = 20_000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if ((await ok()) && hooks().length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('did not settle');
  };

  async function imageWith(name: string, cmd: string[]): Promise<void> {
    const work = mkdtempSync(join(root, 'tmp-oci-'));
    try {
      const layer = readdirSync(`${root}/layers/sha256`)[0];
      const layout = join(work, 'layout');
      const sh = (c: string, a: string[]) => execFileSync(c, a, { stdio: 'pipe' });
      sh('umoci', ['init', '--layout', layout]);
      sh('umoci', ['new', '--image', `${layout}:v1`]);
      sh('umoci', ['insert', '--image', `${layout}:v1`, `${root}/layers/sha256/${layer}`, '/']);
      sh('umoci', ['config', '--image', `${layout}:v1`, '--config.label', `io.novabox.server-cmd=${JSON.stringify(cmd)}`]);
      const r = await nb(['image', 'create', '--file', layout, '--format', 'oci', name]);
      expect(r.exitCode, r.stderr).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-restart-'));
    expect((await nb(['run', '--rm', 'busybox', 'true'])).exitCode).toBe(0);
    await imageWith('crash', ['/bin/sh', '-c', 'echo up; exit 3']);
    await imageWith('long', ['/bin/sh', '-c', 'while :; do sleep 1; done']);
  }, 120_000);
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    await settle(async () => true);
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[]) {
      await nb(['server', 'delete', '--force', s.ID]);
    }
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(census(root))).toEqual(strip(before));
    expect(existsSync(`${root}/servers`) ? readdirSync(`${root}/servers`) : []).toEqual([]);
  }, 60_000);

  it('on-failure:2: a crashing command is restarted twice by its monitor, each restart an action with the status, then stays down', async () => {
    const c = await nb(['server', 'create', '--image', 'crash', '--flavor', 'c1.nano', '--restart', 'on-failure:2', 'c1']);
    expect(c.stderr).toBe('');
    await settle(async () => (await actions('c1')).filter((a) => a.Action === 'stop').length === 3);
    const acts = await actions('c1');
    expect(acts.map((a) => a.Action)).toEqual(['create', 'stop', 'restart', 'stop', 'restart', 'stop']);
    expect(acts.filter((a) => a.Action === 'restart').map((a) => a.Message)).toEqual([
      'restart 1 of 2 after: exited with status 3',
      'restart 2 of 2 after: exited with status 3',
    ]);
    expect(await show('c1')).toMatchObject({
      status: 'SHUTOFF',
      'OS-EXT-STS:power_state': 'Crashed',
      restart: 'on-failure:2 (2 in a row)',
    });
    const log = (await nb(['console', 'log', 'show', 'c1'])).stdout;
    expect(log.match(/^up$/gm)).toHaveLength(3);
    expect(log).toContain('not restarted: restarted 2 times in a row (on-failure:2)');
  }, 60_000);

  it('always: restarted after an exit; a stop (or delete) is no crash; bad policies change nothing', async () => {
    for (const bad of ['sometimes', 'on-failure:0']) {
      const r = await nb(['server', 'create', '--image', 'long', '--flavor', 'c1.nano', '--restart', bad, 'x']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toBe(`novabox: invalid restart policy "${bad}": expected no, always, on-failure or on-failure:N (N >= 1)\n`);
    }
    expect((await nb(['server', 'list', '-f', 'json'])).stdout).toBe('[]\n');
    expect((await nb(['server', 'create', '--image', 'long', '--flavor', 'c1.nano', '--restart', 'always', 'a1'])).exitCode).toBe(0);
    const pid = (await show('a1')).pid as number;
    process.kill(pid, 'SIGKILL'); // the server's pid 1: its command "crashes"
    await settle(async () => (await show('a1')).status === 'ACTIVE' && (await show('a1')).pid !== pid);
    expect((await actions('a1')).map((a) => [a.Action, a.Message])).toEqual([
      ['create', null],
      ['stop', 'server stopped by itself: killed by signal 9'],
      ['restart', 'restart 1 after: killed by signal 9'],
    ]);
    expect((await nb(['server', 'stop', 'a1'])).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    await settle(async () => true);
    expect(await show('a1')).toMatchObject({ status: 'SHUTOFF' });
    expect((await actions('a1')).at(-1)).toMatchObject({ Action: 'stop', Message: null });
    const bad = await nb(['server', 'set', '--restart', 'never', '--property', 'k=v', 'a1']);
    expect(bad.exitCode).toBe(2);
    expect(await show('a1')).toMatchObject({ properties: {}, restart: 'always (1 in a row)' });
    expect((await nb(['server', 'set', '--restart', 'no', 'a1'])).exitCode).toBe(0);
    expect((await show('a1')).restart).toBe('no');
  }, 60_000);

  it('a simulated host reboot: autostart run brings back always and on-failure servers, not the others', async () => {
    for (const [name, policy] of [
      ['r-always', 'always'],
      ['r-fail', 'on-failure'],
      ['r-no', 'no'],
    ]) {
      const r = await nb(['server', 'create', '--image', 'long', '--flavor', 'c1.nano', '--restart', policy, name]);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    expect((await nb(['server', 'create', '--image', 'long', '--flavor', 'c1.nano', '--restart', 'always', 'r-stopped'])).exitCode).toBe(0);
    expect((await nb(['server', 'stop', 'r-stopped'])).exitCode).toBe(0);
    // the reboot: every monitor, then every server process, killed (no monitor sees an
    // exit, so none restarts anything), and the boot id the servers ran under changed
    const db = new Database(join(root, 'novabox.db'));
    const rt = db.prepare('SELECT monitor_pid AS m, init_pid AS i FROM server_runtime').all() as { m: number; i: number }[];
    expect(rt).toHaveLength(3);
    for (const { m } of rt) process.kill(m, 'SIGKILL');
    for (const { i } of rt) process.kill(i, 'SIGKILL');
    db.prepare("UPDATE server_runtime SET boot_id = 'a-boot-before-this-one'").run();
    db.close();
    const t0 = Date.now();
    const r = await nb(['autostart', 'run', '--parallel', '2']);
    const ms = Date.now() - t0;
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['started r-always', 'started r-fail']);
    expect(ms).toBeLessThan(10_000);
    for (const n of ['r-always', 'r-fail']) {
      expect(await show(n)).toMatchObject({ status: 'ACTIVE' });
      expect((await actions(n)).slice(-2)).toEqual(
        [
          { Action: 'stop', Message: 'server stopped by itself: its processes are gone (host reboot?)' },
          { Action: 'restart', Message: 'restart after the host rebooted (autostart)' },
        ].map((a) => expect.objectContaining(a)),
      );
    }
    expect(await show('r-no')).toMatchObject({ status: 'SHUTOFF' });
    expect(await show('r-stopped')).toMatchObject({ status: 'SHUTOFF' });
    // nothing left to do: a second run starts nothing
    expect((await nb(['autostart', 'run'])).stdout).toBe('');
  }, 90_000);

  it('autostart install writes a unit that runs this novabox for this root', async () => {
    const dir = mkdtempSync(join(root, 'tmp-units-'));
    const r = await nb(['autostart', 'install', '--unit-dir', dir, '--no-enable', '--parallel', '8']);
    expect(r.exitCode, r.stderr).toBe(0);
    const file = r.stdout.trim();
    expect(file).toMatch(new RegExp(`^${dir}/novabox-autostart-[0-9a-f]{8}\\.service$`));
    const unit = readFileSync(file, 'utf8');
    expect(unit).toContain(`Environment=NOVABOX_ROOT=${root}\n`);
    expect(unit).toMatch(/\nExecStart=\/\S+\/node \/\S+\/bin\/novabox autostart run --parallel 8\n/);
    expect(unit).toContain('WantedBy=multi-user.target');
    rmSync(dir, { recursive: true });
  });
});
