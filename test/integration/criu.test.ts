/**
 * CRIU and a running server (issue 18, live migration's first half): where `criu check`
 * passes (the pure cgroup v2 guest: Debian 12's CRIU 3.17.1 on Debian's 6.1 kernel; it
 * fails on newer kernels, "vdso: Unexpected rt vDSO area bounds"), a server with a process
 * `server exec` left running is dumped whole (its pid, mount, uts, ipc and network
 * namespaces) while it keeps running, and the process keeps counting. What this needs of
 * novabox: every command leads a session of its own (a session leader outside the pid
 * namespace is refused), and pid 1's /dev/null stdin is the server's own (a file on a host
 * mount outside the server is refused).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { criuCheck } from '../../src/runtime/criu.js';
import { census, type Census } from '../helpers/census.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const check = isRoot ? criuCheck() : ({ ok: false, reason: 'not root' } as const);

describe.skipIf(!isRoot)('CRIU dumps a running server (root, where "criu check" passes)', () => {
  skipEachIf(check.ok ? undefined : `"criu check" fails here: ${check.reason}`);
  let r: ReturnType<typeof tempRoot>;
  let before: Census;
  const nb = (args: string[]) => runCli(args, { root: r.root, timeoutMs: 60_000 });
  const ok = async (args: string[]) => {
    const res = await nb(args);
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    return res.stdout;
  };

  beforeAll(() => {
    if (!check.ok) return;
    r = tempRoot('nbx-criu-');
    before = census(r.root);
  });
  afterAll(() => {
    if (!r) return;
    expect(census(r.root)).toEqual(before);
    r.remove();
  });

  it.each(['auto', 'host'])(
    'a server (--userns %s) with a counter left by server exec is dumped while it runs (criu dump --leave-running) and keeps counting',
    async (userns) => {
      await ok(['server', 'create', '--network', 'none', '--userns', userns, '--image', 'busybox', '--flavor', 'm1.tiny', 'dumped']);
      const images = mkdtempSync(join(tmpdir(), 'nbx-criu-img-'));
      try {
        await ok([
          'server',
          'exec',
          'dumped',
          '--',
          'sh',
          '-c',
          'i=0; (exec 3>/tmp/open; while :; do i=$((i+1)); echo $i > /cnt; echo $i >&3; sleep 0.1; done) >/dev/null 2>&1 & sleep 0.3',
        ]);
        const pid = (await ok(['server', 'show', 'dumped', '-f', 'value', '-c', 'pid'])).trim();
        expect(pid).toMatch(/^\d+$/);
        const d = spawnSync(
          'criu',
          [
            'dump',
            '-t',
            pid,
            '-D',
            images,
            '-o',
            'dump.log',
            '--leave-running',
            '--manage-cgroups',
            '--network-lock',
            'nftables',
            '--external',
            'mnt[]',
            '--shell-job',
          ],
          { encoding: 'utf8', timeout: 60_000 },
        );
        const log = existsSync(join(images, 'dump.log'))
          ? spawnSync('grep', ['-E', 'Error', join(images, 'dump.log')], { encoding: 'utf8' }).stdout
          : '';
        expect(d.status, `${d.stderr}\n${log}`).toBe(0);
        expect(existsSync(join(images, 'inventory.img'))).toBe(true);
        const first = Number((await ok(['server', 'exec', 'dumped', '--', 'cat', '/cnt'])).trim());
        await new Promise((res) => setTimeout(res, 500));
        const later = Number((await ok(['server', 'exec', 'dumped', '--', 'cat', '/cnt'])).trim());
        expect(later).toBeGreaterThan(first);
        expect(await ok(['server', 'show', 'dumped', '-f', 'value', '-c', 'status'])).toBe('ACTIVE\n');
      } finally {
        rmSync(images, { recursive: true, force: true });
        await nb(['server', 'delete', '--force', 'dumped']);
      }
    },
    120_000,
  );
});
