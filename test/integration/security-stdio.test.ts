/**
 * Escape corpus: stdio that is a file of the host. A process inside could reopen an fd
 * it was handed through /proc/self/fd/N and reach the host's file with its own access
 * mode; so a regular file as stdio of `server exec` or `run` reaches the command as a
 * pipe the monitor relays (as conmon does), while pipes, sockets and terminals are handed
 * in as they are. Each test sends the CLI's stdio to host files, then from inside tries
 * to read and rewrite them through /proc/self/fd.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, runCli } from '../helpers/run-cli.js';
import { useRunRoot } from '../helpers/run-root.js';

const isRoot = process.getuid?.() === 0;

/** bin/novabox with stdin, stdout and stderr on the given host files. */
function withFiles(root: string, args: string[], files: { stdin?: string; stdout: string; stderr: string }) {
  const fds = [files.stdin ? openSync(files.stdin, 'r') : 'ignore', openSync(files.stdout, 'a'), openSync(files.stderr, 'a')] as const;
  try {
    const r = spawnSync(BIN, args, { env: cliEnv(root), stdio: [...fds], timeout: 60_000 });
    return r.status;
  } finally {
    for (const fd of fds) if (typeof fd === 'number') closeSync(fd);
  }
}

// What the command sees of its stdio, and what it gets trying to reach the files behind it:
// the kind of each fd, then a write through /proc/self/fd/0 (reopened for writing) that
// would land in the host's stdin file if fd 0 were that file.
const PROBE = [
  'for n in 0 1 2; do echo "fd$n $(stat -L -c %F /proc/self/fd/$n) $(readlink /proc/self/fd/$n | cut -c1-5)"; done',
  'echo REWRITTEN > /proc/self/fd/0 2>/dev/null; echo stdin-write=$?',
].join('; ');

describe.skipIf(!isRoot)('escape corpus: a host file as stdio is relayed through a pipe (root, real containers)', () => {
  let root = '';
  let dir = '';
  useRunRoot((r) => {
    root = r;
  });
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nbx-stdio-'));
    const r = await runCli(['server', 'create', '--image', 'busybox', '--flavor', 'm1.tiny', '--network', 'none', '--wait', 'stdio'], {
      root,
    });
    expect(r.exitCode).toBe(0);
  });
  afterAll(async () => {
    await runCli(['server', 'delete', '--force', 'stdio'], { root });
    rmSync(dir, { recursive: true, force: true });
  });

  for (const verb of ['server exec', 'run'] as const) {
    it(`${verb}: stdin, stdout and stderr that are host files are pipes inside, and the files only get what the command wrote`, () => {
      const stdin = join(dir, `${verb.replace(' ', '-')}.in`);
      const stdout = join(dir, `${verb.replace(' ', '-')}.out`);
      const stderr = join(dir, `${verb.replace(' ', '-')}.err`);
      writeFileSync(stdin, 'secret input\n');
      writeFileSync(stdout, 'kept before\n');
      writeFileSync(stderr, '');
      const cmd = ['sh', '-c', `${PROBE}; cat; echo to-stderr >&2`];
      const args =
        verb === 'run' ? ['run', '--rm', '-i', '--network', 'none', 'busybox', ...cmd] : ['server', 'exec', '-i', 'stdio', '--', ...cmd];
      expect(withFiles(root, args, { stdin, stdout, stderr })).toBe(0);
      const out = readFileSync(stdout, 'utf8');
      expect(out).toContain('fd0 fifo pipe:');
      expect(out).toContain('fd1 fifo pipe:');
      expect(out).toContain('fd2 fifo pipe:');
      // the stdin file is read through the relay and never rewritten from inside
      expect(out).toContain('secret input\n');
      expect(readFileSync(stdin, 'utf8')).toBe('secret input\n');
      // appended to, never truncated or reopened from inside
      expect(out.startsWith('kept before\n')).toBe(true);
      expect(readFileSync(stderr, 'utf8')).toBe('to-stderr\n');
    });
  }

  it("a socket as stdout (Node's spawn) is handed in as it is, no relay, and the exit status comes back", async () => {
    const r = await runCli(['server', 'exec', 'stdio', '--', 'sh', '-c', 'stat -L -c %F /proc/self/fd/1; exit 7'], { root });
    expect(r.stdout).toBe('socket\n');
    expect(r.exitCode).toBe(7);
  });

  it('a command that leaves a background process behind returns when it exits, with its output relayed', () => {
    const stdout = join(dir, 'bg.out');
    const stderr = join(dir, 'bg.err');
    writeFileSync(stdout, '');
    writeFileSync(stderr, '');
    const t0 = Date.now();
    expect(withFiles(root, ['server', 'exec', 'stdio', '--', 'sh', '-c', 'echo a; sleep 20 & echo b'], { stdout, stderr })).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(readFileSync(stdout, 'utf8')).toBe('a\nb\n');
    // the sleep is still in the server: stop it so the census after the test matches
    spawnSync(BIN, ['server', 'exec', 'stdio', '--', 'pkill', 'sleep'], { env: cliEnv(root), stdio: 'ignore' });
  });

  it('a large stdin file goes through whole', () => {
    const stdin = join(dir, 'big.in');
    const stdout = join(dir, 'big.out');
    const stderr = join(dir, 'big.err');
    const big = Array.from({ length: 100_000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    writeFileSync(stdin, big);
    writeFileSync(stdout, '');
    writeFileSync(stderr, '');
    expect(withFiles(root, ['server', 'exec', '-i', 'stdio', '--', 'cat'], { stdin, stdout, stderr })).toBe(0);
    expect(readFileSync(stdout, 'utf8')).toBe(big);
  });
});
