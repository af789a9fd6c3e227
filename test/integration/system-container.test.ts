/**
 * Issue 17 end to end, as a user does it: `image build debian` (cached), a keypair, a
 * server created with --key-name and --user-data on the bridge network. systemd boots to
 * running, the image's own cloud-init applies the NoCloud seed (runcmd, write_files,
 * hostname), root's authorized_keys holds the key, `ssh root@ADDRESS` works from the host
 * (to the server's own address only), stop is clean, a snapshot boots, and delete leaves
 * nothing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { debianImage, debianImageMissing } from '../helpers/debian-image.js';
import { IN_GUEST, runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const tools = isRoot ? missingCommands(['ssh', 'ssh-keygen']) : [];
const missing = !isRoot
  ? 'needs root'
  : (debianImageMissing() ?? (tools.length ? `missing ${tools.join(', ')} (apt-get install openssh-client)` : undefined));
const SLOW = IN_GUEST ? 4 : 1;

const USER_DATA = `#cloud-config
write_files:
  - path: /etc/novabox-test.conf
    content: "written by cloud-init\\n"
runcmd:
  - [sh, -c, "echo ran-by-runcmd > /root/runcmd.out"]
`;

describe('a Debian system container with a key and user data (root, real cloud-init and sshd)', () => {
  skipEachIf(missing);
  let root = '';
  let remove: (() => void) | undefined;
  let image = '';
  let before: Census;
  const nb = (args: string[], timeoutMs = 60_000 * SLOW) => runCli(args, { root, timeoutMs });
  const exec = async (server: string, cmd: string[]) => (await nb(['server', 'exec', server, '--', ...cmd])).stdout.trim();
  const until = async (server: string, cmd: string[], done: (out: string) => boolean, withinMs: number) => {
    const t0 = Date.now();
    let out = '';
    while (Date.now() - t0 < withinMs) {
      out = await exec(server, cmd);
      if (done(out)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { out, ms: Date.now() - t0 };
  };
  const sshTo = (key: string, addr: string, cmd: string) =>
    spawnSync(
      'ssh',
      [
        '-i',
        key,
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'ConnectTimeout=5',
        '-o',
        'LogLevel=ERROR',
        `root@${addr}`,
        cmd,
      ],
      { encoding: 'utf8', timeout: 20_000 * SLOW },
    );

  beforeAll(async () => {
    if (missing) return;
    ({ root, remove } = tempRoot('nbx-sysct-'));
    image = await debianImage(root);
    before = census(root);
  }, 900_000);
  afterAll(async () => {
    if (missing) return;
    for (const s of ['c1', 'c2']) await nb(['server', 'delete', '--wait', s]);
    await nb(['image', 'delete', 'c1-snap']);
    remove?.();
  }, 180_000);

  it(
    'boots with cloud-init applying the seed, and takes ssh with the key',
    async () => {
      const key = join(root, 'id_ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      const kp = await nb(['keypair', 'create', '--public-key', `${key}.pub`, 'me']);
      expect(kp.exitCode, kp.stderr).toBe(0);
      const ud = join(root, 'init.yaml');
      writeFileSync(ud, USER_DATA);
      const c = await nb([
        'server',
        'create',
        '--image',
        image,
        '--flavor',
        'm1.small',
        '--key-name',
        'me',
        '--user-data',
        ud,
        '--wait',
        'c1',
      ]);
      expect(c.exitCode, c.stderr).toBe(0);
      const running = await until('c1', ['systemctl', 'is-system-running'], (o) => o === 'running' || o === 'degraded', 120_000 * SLOW);
      console.log(`c1: ${running.out} ${running.ms} ms after create --wait returned`);
      const failed = await exec('c1', ['systemctl', '--failed', '--no-legend', '--plain']);
      expect({ state: running.out, failed }).toEqual({ state: 'running', failed: '' });
      // cloud-init finished its stages without an error
      const status = await exec('c1', ['cloud-init', 'status', '--long']);
      expect(status, status).toMatch(/status: done/);
      expect(await exec('c1', ['cat', '/root/runcmd.out'])).toBe('ran-by-runcmd');
      expect(await exec('c1', ['cat', '/etc/novabox-test.conf'])).toBe('written by cloud-init');
      expect(await exec('c1', ['hostname'])).toBe('c1');
      expect(await exec('c1', ['cat', '/root/.ssh/authorized_keys'])).toContain(readFileSync(`${key}.pub`, 'utf8').trim().split(' ')[1]);
      // ssh from the host to the server's own address (a container novabox made)
      const addr = (await nb(['server', 'show', 'c1', '-f', 'value', '-c', 'addresses'])).stdout
        .trim()
        .split('=')[1]!
        .split(',')[0]!
        .trim();
      expect(addr).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const ssh = await (async () => {
        // sshd may still be starting when systemd says running (socket-less ssh.service)
        for (let i = 0; ; i++) {
          const r = sshTo(key, addr, 'hostname; id -u');
          if (r.status === 0 || i >= 20) return r;
          await new Promise((res) => setTimeout(res, 500));
        }
      })();
      expect(ssh.status, ssh.stderr).toBe(0);
      expect(ssh.stdout.trim().split('\n')).toEqual(['c1', '0']);
      // a password login is not offered a key that is not ours
      const other = join(root, 'other');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      expect(sshTo(other, addr, 'true').status).not.toBe(0);
    },
    300_000 * SLOW,
  );

  it(
    'stops cleanly, boots again from a snapshot, and delete leaves nothing',
    async () => {
      const stop = await nb(['server', 'stop', '--wait', 'c1']);
      expect(stop.exitCode, stop.stderr).toBe(0);
      const log = (await nb(['console', 'log', 'show', 'c1'])).stdout;
      expect(log).toMatch(/Reached target .*shutdown\.target/);
      const snap = await nb(['server', 'image', 'create', '--name', 'c1-snap', '--wait', 'c1']);
      expect(snap.exitCode, snap.stderr).toBe(0);
      const c2 = await nb(['server', 'create', '--image', 'c1-snap', '--flavor', 'm1.small', '--wait', 'c2']);
      expect(c2.exitCode, c2.stderr).toBe(0);
      const running = await until('c2', ['systemctl', 'is-system-running'], (o) => o === 'running' || o === 'degraded', 120_000 * SLOW);
      expect(running.out).toBe('running');
      // the snapshot kept what cloud-init did on c1, and c2 is c2
      expect(await exec('c2', ['cat', '/etc/novabox-test.conf'])).toBe('written by cloud-init');
      expect(await exec('c2', ['hostname'])).toBe('c2');
      for (const s of ['c1', 'c2']) expect((await nb(['server', 'delete', '--wait', s])).exitCode).toBe(0);
      expect((await nb(['image', 'delete', 'c1-snap'])).exitCode).toBe(0);
      expect(census(root)).toEqual(before);
    },
    400_000 * SLOW,
  );
});
