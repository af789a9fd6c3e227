/**
 * The escape corpus, part 3: images whose /proc, /dev, /sys, /etc or /dev/null is a
 * symlink to a host path (the CVE-2025-31133 class: a runtime that follows the link
 * mounts, binds or writes on the host). Each link is tried absolute (/tmp/<dir>) and
 * relative (climbing out of the rootfs to the host's /tmp/<dir>), with `run` and with a
 * server on the bridge network (which binds /etc/hosts, /etc/hostname and
 * /etc/resolv.conf). Starting may be refused, or may succeed with the link confined to
 * the container; either way the host directory keeps its one file, unchanged and not
 * mounted over, and what the container then writes through the link stays inside.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { attackRootfs, importImage, scratch, tarOf } from '../helpers/escape.js';
import { IN_GUEST, runCli, tempRoot } from '../helpers/run-cli.js';
import { hasGnuTar } from '../../src/compute/snapshot.js';

// Importing an image extracts its layer with GNU tar; the QEMU guest has only busybox's.
const canImport = hasGnuTar();

const isRoot = process.getuid?.() === 0;
// directories link to the host directory, files (where novabox binds or writes one) to its canary file
const PATHS = ['proc', 'dev', 'sys', 'etc', 'dev/null', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf'] as const;
const isFile = (p: string) => p.includes('/');

/** A host directory with one file; what it must still be after every attempt. */
function hostDir(): { dir: string; file: string; check: () => void; remove: () => void } {
  const dir = `/tmp/nbx-escape-host-${randomBytes(6).toString('hex')}`;
  mkdirSync(dir, { mode: 0o755 });
  const file = join(dir, 'canary');
  const content = `host canary ${randomBytes(6).toString('hex')}\n`;
  writeFileSync(file, content);
  const mounted = () =>
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(dir));
  return {
    dir,
    file,
    check: () => {
      expect(readdirSync(dir)).toEqual(['canary']);
      expect(readFileSync(file, 'utf8')).toBe(content);
      expect(mounted()).toEqual([]);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

describe.skipIf(!isRoot)('escape corpus: images with /proc, /dev, /sys, /etc or /dev/null linked to a host path (root)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  let host: ReturnType<typeof hostDir>;
  const nb = (args: string[]) => runCli(args, { root, timeoutMs: IN_GUEST ? 120_000 : 60_000 });

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-seclink-'));
    expect((await runCli(['run', '--rm', '--network', 'none', 'busybox', 'true'], { root })).exitCode).toBe(0); // builds busybox
  }, 120_000);
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    host = hostDir();
    before = census(root);
  });
  afterEach(async () => {
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID]);
    for (const i of JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout || '[]') as { Name: string }[])
      if (i.Name !== 'busybox') await nb(['image', 'delete', i.Name]);
    host.check();
    host.remove();
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(census(root))).toEqual(strip(before));
  }, 120_000);

  for (const path of PATHS) {
    it.skipIf(!canImport)(
      `/${path} -> a host path, absolute and relative: run and a bridged server refuse or stay inside`,
      async () => {
        const outcomes: string[] = [];
        // In the QEMU guest (CPUs emulated) only the relative form, the one that climbs out
        // of the rootfs: both are resolved by the same RESOLVE_IN_ROOT walk, which the host
        // run covers in both forms.
        for (const form of IN_GUEST ? (['relative'] as const) : (['absolute', 'relative'] as const)) {
          const work = scratch('nbx-seclink-img-');
          const image = `link-${path.replace('/', '-')}-${form}`;
          try {
            const rootfs = join(work, 'rootfs');
            attackRootfs(rootfs);
            const at = join(rootfs, path);
            rmSync(at, { recursive: true, force: true });
            const target = isFile(path) ? host.file : host.dir;
            symlinkSync(form === 'absolute' ? target : `${'../'.repeat(24)}${target.slice(1)}`, at);
            tarOf(rootfs, join(work, 'image.tar'));
            await importImage(root, image, join(work, 'image.tar'));
          } finally {
            rmSync(work, { recursive: true, force: true });
          }
          // Inside, write through the link: a file beside the canary, and over it.
          const write = `for d in /${path} /${path}/..; do echo pwned > $d/pwned; echo pwned > $d/canary; done 2>/dev/null; echo pwned > /${path}; stat -c '%F %t:%T' /dev/null`;
          const run = await nb(['run', '--rm', image, '/bin/sh', '-c', write]);
          host.check();
          const srv = await nb(['server', 'create', '--image', image, '--flavor', 'm1.tiny', '--wait', 'l', '-f', 'value', '-c', 'status']);
          host.check();
          let exec = '';
          if (srv.exitCode === 0) {
            const e = await nb(['server', 'exec', 'l', '--', '/bin/sh', '-c', write]);
            exec = `, exec ${e.exitCode}`;
            host.check();
            expect((await nb(['server', 'stop', '--wait', 'l'])).exitCode).toBe(0);
            expect((await nb(['server', 'start', '--wait', 'l'])).exitCode).toBe(0);
            host.check();
          }
          await nb(['server', 'delete', '--force', 'l']);
          host.check();
          // refused: one sentence and a non-zero status (run: 125, the container could not be set up)
          // started: /dev is the container's own tmpfs with the real null device
          if (run.exitCode === 0) expect(run.stdout).toBe('character special file 1:3\n');
          if (run.exitCode !== 0) {
            expect(run.exitCode).toBe(125);
            expect(run.stderr.trim().split('\n')).toHaveLength(1);
          }
          if (srv.exitCode !== 0)
            expect(
              srv.stderr
                .trim()
                .split('\n')
                .filter((l) => !l.startsWith('hint:')),
            ).toHaveLength(1);
          outcomes.push(
            `${form}: run ${run.exitCode} ${run.stderr.trim()} | server ${srv.exitCode} ${srv.stdout.trim()}${srv.stderr.trim()}${exec}`,
          );
        }
        console.log(`/${path}:\n  ${outcomes.join('\n  ')}`);
      },
      IN_GUEST ? 600_000 : 90_000,
    );
  }

  it(
    'a server that replaces its own /etc with a link to a host directory, then restarts: the host directory is untouched',
    async () => {
      const c = await nb([
        'server',
        'create',
        '--image',
        'busybox',
        '--flavor',
        'm1.tiny',
        '--network',
        'none',
        '--wait',
        'self',
        '-f',
        'value',
        '-c',
        'status',
      ]);
      expect(c.stdout).toBe('ACTIVE\n');
      // /proc, /sys and /dev are mount points (EBUSY); /etc is the writable layer's to replace
      const r = await nb([
        'server',
        'exec',
        'self',
        '--',
        'sh',
        '-c',
        `cp -a /etc /etc.old && rm -rf /etc && ln -s ${host.dir} /etc && ls -ld /etc`,
      ]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`/etc -> ${host.dir}`);
      expect((await nb(['server', 'stop', '--wait', 'self'])).exitCode).toBe(0);
      const s = await nb(['server', 'start', '--wait', 'self']);
      host.check();
      if (s.exitCode === 0) {
        const e = await nb(['server', 'exec', 'self', '--', 'sh', '-c', 'echo pwned > /etc/pwned; echo pwned > /etc/canary; true']);
        expect(e.exitCode).toBe(0);
        host.check();
      } else {
        expect(s.stderr.trim().split('\n')).toHaveLength(1);
      }
      console.log(`a server's own /etc -> ${host.dir}: start ${s.exitCode} ${s.stderr.trim()}`);
    },
    IN_GUEST ? 300_000 : 60_000,
  );
});
