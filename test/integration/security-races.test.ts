/**
 * The escape corpus, part 1: attacks from inside a server that race what novabox does to
 * it — `server exec`, `server start`, `server image create` and `server stop` — and
 * CVE-2024-21626 (`-w /proc/self/fd/N`). The attacker (test/security/escape.c) loops over
 * every process it can see and tries their fds, cwd, root, exe and mount namespace
 * to reach a marker file on the host (test/helpers/escape.ts). Every test asserts
 * that nothing of the host was reached, and the census after it.
 *
 * Issue 13: the exec helper appears in the server's pid namespace as host root with fd 3
 * on the server's host cgroup directory: the exec race reads the host's marker in some
 * of the execs until the executor joins non-dumpable with its host fds closed.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import {
  attackRootfs,
  breachedPids,
  breaches,
  hostMarker,
  importImage,
  installAttacker,
  ociOf,
  parseProbe,
  scratch,
  type HostMarker,
} from '../helpers/escape.js';
import { BIN, IN_GUEST, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { hasGnuTar } from '../../src/compute/snapshot.js';

const isRoot = process.getuid?.() === 0;
// The QEMU guest emulates its 2 CPUs: fewer execs, one attacker (two starve the CLI),
// and a start/snapshot/stop prober that pauses 2 ms between loops.
const EXECS = IN_GUEST ? 8 : 30;
const WORKERS = IN_GUEST ? 1 : 2;
const CYCLES = IN_GUEST ? 1 : 3;

/**
 * The prober of the start/snapshot/stop race: the server command of the `attack-cmd`
 * image (it probes from the server's first moment), or, where images cannot be imported
 * (the QEMU guest has no GNU tar), started by an exec right after each start.
 */
const START_SH = `#!/bin/sh
while [ ! -s /root/marker ]; do sleep 0.1; done
/bin/nbx-escape fds >> /root/fds.out
${IN_GUEST ? 'export NBX_PAUSE_US=2000\n' : ''}exec /bin/nbx-escape probe "$(cat /root/marker)" 600 >> /root/race.out
`;

describe.skipIf(!isRoot)('escape corpus: races against exec, start, snapshot and stop (root, real servers)', () => {
  let root: string;
  let removeRoot: () => void;
  let before: Census;
  let marker: HostMarker;
  const nb = (args: string[], opts: { timeoutMs?: number } = {}) => runCli(args, { root, timeoutMs: opts.timeoutMs ?? 60_000 });
  const idOf = async (server: string) => (await nb(['server', 'show', server, '-f', 'value', '-c', 'id'])).stdout.trim();
  const create = async (name: string, image: string) => {
    const r = await nb(['server', 'create', '--image', image, '--flavor', 'm1.tiny', '--wait', name, '-f', 'value', '-c', 'status']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ACTIVE\n');
  };

  let cmdImage = false;
  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-sec-'));
    expect((await runCli(['run', '--rm', '--network', 'none', 'busybox', 'true'], { root })).exitCode).toBe(0); // builds busybox
    if (!hasGnuTar()) return;
    const work = scratch('nbx-sec-img-');
    try {
      attackRootfs(join(work, 'rootfs'), { 'bin/start-probe': START_SH });
      ociOf(join(work, 'rootfs'), join(work, 'oci'), ['/bin/start-probe']);
      await importImage(root, 'attack-cmd', join(work, 'oci'));
      cmdImage = true;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 180_000);
  afterAll(() => removeRoot?.());
  beforeEach(() => {
    marker = hostMarker();
    before = census(root);
  });
  afterEach(async () => {
    marker.remove();
    for (const s of JSON.parse((await nb(['server', 'list', '-f', 'json'])).stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID]);
    for (const i of JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout || '[]') as { Name: string }[]) {
      if (!['busybox', 'attack-cmd'].includes(i.Name)) await nb(['image', 'delete', i.Name]);
    }
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')) });
    expect(strip(census(root))).toEqual(strip(before));
    expect(existsSync(join(root, 'servers')) ? readdirSync(join(root, 'servers')) : []).toEqual([]);
  }, 180_000);

  it(
    `server exec: ${EXECS} execs while ${WORKERS} attacker processes inside loop over every process's fds, cwd, root, exe and mount namespace`,
    async () => {
      await create('x', 'busybox');
      await installAttacker(root, 'x');
      // The attacker: two processes (one per CPU of the host), until /tmp/stop or 120 s.
      const attacker = spawn(
        process.execPath,
        [BIN, 'server', 'exec', '-e', `NBX_WORKERS=${WORKERS}`, 'x', '--', '/bin/nbx-escape', 'probe', marker.name, '120', '/tmp/stop'],
        {
          env: cliEnv(root),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      attacker.stdout.on('data', (d) => (out += d));
      attacker.stderr.on('data', (d) => (err += d));
      const done = new Promise<number | null>((resolve) => attacker.on('close', (code) => resolve(code)));
      try {
        // it runs once its workers show up in the server
        const deadline = Date.now() + 30_000;
        while (
          (await nb(['server', 'exec', 'x', '--', 'sh', '-c', 'pidof nbx-escape | wc -w'])).stdout.trim() !== String(WORKERS) &&
          Date.now() < deadline
        ) {
          await new Promise((r) => setTimeout(r, 100));
        }
        // the operation attacked: exec, plain, as another user, with a pty, in another cwd
        const variants = [[], ['-u', '1000:1000'], ['-t'], ['-w', '/tmp'], ['-e', 'A=b']];
        const raceEnd = Date.now() + (IN_GUEST ? 240_000 : 60_000);
        let execs = 0;
        for (let i = 0; i < EXECS && Date.now() < raceEnd; i++, execs++) {
          const r = await nb(['server', 'exec', ...variants[i % variants.length], 'x', '--', 'true']);
          expect(r.exitCode, r.stderr).toBe(0);
        }
        expect((await nb(['server', 'exec', 'x', '--', 'touch', '/tmp/stop'])).exitCode).toBe(0);
        expect(await done).toBe(0);
        expect(err).toBe('');
        const probe = parseProbe(out);
        const hit = breachedPids(probe.findings);
        console.log(
          `exec race: ${execs} execs; the attackers saw ${probe.pids} new processes in ${probe.loops} loops; host marker reached in ${hit.length} of ${execs} execs (pids ${hit.join(' ') || 'none'})`,
        );
        // it raced: it saw the execs' processes (each exec is a new pid in the server)
        expect(probe.pids).toBeGreaterThan(0);
        expect(breaches(probe.findings, marker)).toEqual([]);
      } finally {
        attacker.kill('SIGKILL');
      }
    },
    IN_GUEST ? 600_000 : 150_000,
  );

  it(
    `server start, snapshot and stop: ${CYCLES} cycles with a prober inside throughout (the server's command, or an exec after each start); symlinks to the host's /tmp are packed as symlinks`,
    async () => {
      await create('t', cmdImage ? 'attack-cmd' : 'busybox');
      const id = await idOf('t');
      const started = async () => {
        if (cmdImage) return; // the server's command is the prober
        const r = await nb(['server', 'exec', 't', '--', 'sh', '-c', '/bin/start-probe </dev/null >/dev/null 2>&1 &']);
        expect(r.exitCode, r.stderr).toBe(0);
      };
      // A stop must find the prober catching SIGTERM (it then writes its SUMMARY): before
      // that, the server's command is a shell, which as pid 1 ignores SIGTERM, and the stop
      // ends in a SIGKILL after its timeout. `server start --wait` returns once the server
      // is ACTIVE, not once its command has got that far.
      const armed = async () => {
        const sh =
          "for p in $(pidof nbx-escape); do m=$(awk '/^SigCgt:/ {print $2}' /proc/$p/status); [ $(( 0x$m & 0x4000 )) -ne 0 ] && echo armed && exit 0; done; echo not yet";
        const deadline = Date.now() + (IN_GUEST ? 120_000 : 30_000);
        for (;;) {
          const r = await nb(['server', 'exec', 't', '--', 'sh', '-c', sh]);
          expect(r.exitCode, r.stderr).toBe(0);
          if (r.stdout.trim() === 'armed') return;
          expect(Date.now(), 'the prober never caught SIGTERM').toBeLessThan(deadline);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      if (!cmdImage) await installAttacker(root, 't', { '/bin/start-probe': START_SH });
      await started();
      expect(
        (
          await nb([
            'server',
            'exec',
            't',
            '--',
            'sh',
            '-c',
            `echo ${marker.name} > /root/marker; ln -s ${marker.path} /root/abs-link; ln -s ../../../../../../../../tmp /root/rel-link`,
          ])
        ).exitCode,
      ).toBe(0);
      await armed();
      const snapshots: string[] = [];
      for (let c = 0; c < CYCLES; c++) {
        const s = await nb(['server', 'image', 'create', '--name', `snap${c}`, '--wait', 't', '-f', 'json'], { timeoutMs: 120_000 });
        expect(s.exitCode, s.stderr).toBe(0);
        snapshots.push(JSON.parse(s.stdout).properties.layers.split(',').at(-1));
        expect((await nb(['server', 'stop', '--wait', 't'])).exitCode).toBe(0);
        expect((await nb(['server', 'start', '--wait', 't'])).exitCode).toBe(0);
        await started();
        await armed();
      }
      expect((await nb(['server', 'stop', '--wait', 't'])).exitCode).toBe(0);

      // the probes' findings, from the server's writable layer (our own files, no symlinks)
      const upper = join(root, 'servers', id, 'upper', 'root');
      for (const f of ['race.out', 'fds.out']) expect(lstatSync(join(upper, f)).isFile()).toBe(true);
      const probe = parseProbe(readFileSync(join(upper, 'race.out'), 'utf8'));
      // one probe per start (create + CYCLES starts), each ended by a stop
      expect(readFileSync(join(upper, 'race.out'), 'utf8').match(/^SUMMARY /gm)).toHaveLength(CYCLES + 1);
      console.log(
        `start/snapshot/stop race (prober: ${cmdImage ? "the server's command" : 'an exec after each start'}): ${CYCLES + 1} starts, ${CYCLES} snapshots, ${CYCLES + 1} stops; ${probe.loops} probe loops, ${probe.pids} new processes seen`,
      );
      expect(breaches(probe.findings, marker)).toEqual([]);
      // the server's command inherited nothing but stdio
      expect(readFileSync(join(upper, 'fds.out'), 'utf8')).toBe('FDS 0\n'.repeat(CYCLES + 1));
      // the snapshots hold the symlinks, not what they point to on the host
      for (const layer of snapshots) {
        const blob = readFileSync(join(root, 'blobs/sha256', layer.slice('sha256:'.length)));
        expect(blob.includes(marker.content)).toBe(false);
        expect(blob.includes(Buffer.from(marker.path))).toBe(true); // the link target, as a name
      }
    },
    IN_GUEST ? 600_000 : 120_000,
  );

  for (const how of ['server exec', 'run'] as const) {
    it(
      `CVE-2024-21626: ${how} -w /proc/self/fd/N (N = 3..10) gives no cwd on the host`,
      async () => {
        if (how === 'server exec') await create('w', 'busybox');
        const climb = '../'.repeat(24);
        const script = `pwd; cat ${climb}${marker.name}; echo w > ${climb}${marker.name}.w.cwd`;
        const outcomes: string[] = [];
        for (let n = 3; n <= 10; n++) {
          const args =
            how === 'run'
              ? ['run', '--rm', '--network', 'none', '-w', `/proc/self/fd/${n}`, 'busybox', '/bin/sh', '-c', script]
              : ['server', 'exec', '-w', `/proc/self/fd/${n}`, 'w', '--', '/bin/sh', '-c', script];
          const r = await nb(args);
          expect(r.stdout, `fd ${n}`).not.toContain(marker.content.trim());
          if (r.exitCode === 125) {
            // refused: the fd is gone or no directory
            expect(r.stderr).toMatch(
              new RegExp(`^novabox: chdir /proc/self/fd/${n}: (no such file or directory|not a directory) \\(op \\d+ of \\d+\\)\\n$`),
            );
            outcomes.push(`${n}: ${r.stderr.includes('not a directory') ? 'ENOTDIR' : 'ENOENT'}`);
          } else {
            // a directory of the container's own (its root, opened before pivot_root): the
            // climb from it ends at the container's root, where the marker is not
            expect(r.exitCode, `fd ${n}: ${r.stdout} ${r.stderr}`).toBe(0);
            expect(r.stderr).toMatch(/^cat: can't open '[./]+(tmp\/)?nbx-escape-marker-[0-9a-f]+': No such file or directory\n$/);
            outcomes.push(`${n}: cwd ${r.stdout.split('\n')[0]} inside`);
          }
          expect(breaches([], marker), `fd ${n}`).toEqual([]);
        }
        console.log(`${how} -w /proc/self/fd/N: ${outcomes.join(', ')}`);
      },
      IN_GUEST ? 300_000 : 60_000,
    );
  }
});
