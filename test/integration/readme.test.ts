/**
 * Every example in the README runs as written (issue 20, item 11). The convention, which
 * the README states under "Tests and benchmarks":
 *
 * - a fenced block with the info string `sh` is run, line by line (a line ending in `\`
 *   continues on the next), in README order, all blocks in one state root, by bash with
 *   `pipefail`, each line exiting 0, or N where its comment says `# exit N:`;
 * - any other block must be preceded by `<!-- not run: REASON -->` (and any block so
 *   marked is not run): a block without either fails this test;
 * - a line with `-it` gets a terminal (script(1)) on which `exit` is typed; a line whose
 *   comment says it runs "until Ctrl-C" gets one (SIGINT to its process group) after
 *   1.5 s, and must exit 0 or 130 (`event list --follow` has nothing to print then);
 * - the files the examples import (rootfs.tar.zst, alpine-oci/, saved.tar,
 *   debian.tar.xz: a small busybox rootfs in each format) and `~/.ssh/id_ed25519.pub` are
 *   made by the test in the working directory and a HOME of its own.
 *
 * The run is a fresh NOVABOX_ROOT with no network settings, in a network namespace of its
 * own (test/helpers/in-netns.sh): its default bridge `novabox0`, subnet 10.89.0.0/16, NAT
 * and published ports are the README's and exist only there; the namespace has nothing
 * but `lo` and what novabox makes, so nothing leaves the machine.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { fixtureToolsMissing, lxcTarball, makeRootfs, ociLayout, sh, tarball } from '../helpers/image-fixtures.js';
import { BIN, cliEnv, IN_GUEST, ROOT, removeRoot } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const README = join(ROOT, 'README.md');
const IN_NS = join(ROOT, 'test/helpers/in-netns.sh');

interface Block {
  /** 1-based line of the opening fence */
  line: number;
  info: string;
  /** the reason of a `<!-- not run: … -->` marker just before the fence */
  notRun?: string;
  commands: { line: number; text: string }[];
}

function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let prev = i - 1;
    while (prev >= 0 && lines[prev]!.trim() === '') prev--;
    const marker = prev >= 0 ? /^<!-- not run: (.+?) -->$/.exec(lines[prev]!.trim()) : null;
    const block: Block = { line: i + 1, info: open[1]!, notRun: marker?.[1], commands: [] };
    let j = i + 1;
    let pending: { line: number; text: string } | undefined;
    for (; j < lines.length && !/^```\s*$/.test(lines[j]!); j++) {
      const l = lines[j]!;
      if (pending) pending.text += `\n${l}`;
      else if (l.trim() !== '' && !l.trim().startsWith('#')) pending = { line: j + 1, text: l };
      else continue;
      if (!l.endsWith('\\')) {
        block.commands.push(pending);
        pending = undefined;
      }
    }
    if (j >= lines.length) throw new Error(`README.md:${i + 1}: a fenced block that never closes`);
    blocks.push(block);
    i = j;
  }
  return blocks;
}

const blocks = readmeBlocks(readFileSync(README, 'utf8'));

describe('README blocks: each is run or says why not', () => {
  it('every block is `sh` (run by this test) or marked `<!-- not run: reason -->`', () => {
    const unmarked = blocks.filter((b) => b.info !== 'sh' && !b.notRun).map((b) => `README.md:${b.line} (\`\`\`${b.info})`);
    expect(unmarked).toEqual([]);
    expect(blocks.filter((b) => !b.notRun).length).toBeGreaterThan(3);
  });

  it('the run blocks hold no grammar: no [optional] parts, a|b choices, `/` between commands or <placeholders>', () => {
    const grammar = blocks
      .filter((b) => !b.notRun)
      .flatMap((b) => b.commands)
      .map((c) => ({ ...c, code: c.text.replace(/\s+#\s.*$/gm, '') }))
      .filter((c) => / \[-|[\w-]\|[\w-]| \/ |<[A-Za-z-]+>|…/.test(c.code.replace(/'[^']*'/g, "''")))
      .map((c) => `README.md:${c.line}: ${c.text}`);
    expect(grammar).toEqual([]);
  });
});

/** The ids of `ps -a -f json`. */
function psIds(json: string): string[] {
  try {
    return (JSON.parse(json) as { id?: string; ID?: string }[]).map((c) => c.id ?? c.ID ?? '').filter(Boolean);
  } catch {
    return [];
  }
}

/** A word for sh -c. */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

describe.skipIf(!isRoot)('README examples, run as written (root, a network namespace of their own)', () => {
  const missing = fixtureToolsMissing();
  skipEachIf(
    IN_GUEST
      ? "the README's examples run on the host only: on the guest's emulated CPUs their ~70 commands take minutes"
      : missing.length
        ? `no ${missing.join(', ')} to make the files the README imports`
        : undefined,
  );
  const ns = `nbx-readme-${randomBytes(3).toString('hex')}`;
  let base = '';
  let root = '';
  let work = '';
  let env: NodeJS.ProcessEnv = {};
  let before: Census;

  const spawnLine = (cmd: string, opts: { tty?: boolean; interruptAfterMs?: number; timeoutMs?: number } = {}) =>
    new Promise<Outcome>((resolve, reject) => {
      const argv = [IN_NS, ns, 'bash', '-o', 'pipefail', '-c', cmd];
      const child = opts.tty
        ? spawn('script', ['-qec', argv.map(q).join(' '), '/dev/null'], { cwd: work, env, detached: true })
        : spawn(argv[0]!, argv.slice(1), { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout?.on('data', (d) => (out += d));
      child.stderr?.on('data', (d) => (out += d));
      if (opts.tty) child.stdin?.end('exit\n');
      const group = (sig: NodeJS.Signals) => {
        try {
          process.kill(-child.pid!, sig);
        } catch {
          /* gone */
        }
      };
      const interrupt = opts.interruptAfterMs ? setTimeout(() => group('SIGINT'), opts.interruptAfterMs) : undefined;
      const kill = setTimeout(() => group('SIGKILL'), opts.timeoutMs ?? 60_000);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(interrupt);
        clearTimeout(kill);
        resolve({ code, signal, out });
      });
    });

  beforeAll(() => {
    if (IN_GUEST || missing.length) return;
    base = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), 'nbx-readme-'));
    root = join(base, 'root');
    work = join(base, 'work');
    const home = join(base, 'home');
    const bin = join(base, 'bin');
    for (const d of [root, work, join(home, '.ssh'), bin]) mkdirSync(d, { recursive: true, mode: 0o700 });
    symlinkSync(BIN, join(bin, 'novabox'));
    env = cliEnv(root, { HOME: home, PATH: `${bin}:${process.env.PATH}` });
    // the files the README imports, each a small busybox rootfs in its format
    const rootfs = join(base, 'rootfs');
    makeRootfs(rootfs);
    tarball(rootfs, join(work, 'rootfs.tar.zst'), 'zstd');
    ociLayout(rootfs, join(work, 'alpine-oci'), base);
    sh('skopeo', ['copy', '-q', `oci:${join(work, 'alpine-oci')}:v1`, `docker-archive:${join(work, 'saved.tar')}:team/app:1.0`]);
    lxcTarball(rootfs, base, join(work, 'debian.tar.xz'));
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@readme', '-f', join(home, '.ssh/id_ed25519')]);
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    before = census(root);
  }, 60_000);

  afterAll(async () => {
    if (!root) return;
    try {
      const list = await spawnLine('novabox server list -f value -c ID');
      const ids = list.out.split('\n').filter((l) => /^[0-9a-f-]{36}$/.test(l));
      if (ids.length) await spawnLine(`novabox server delete --force --override-lock ${ids.join(' ')}`);
      const ps = await spawnLine('novabox ps -a -f json');
      const kept = psIds(ps.out);
      if (kept.length) await spawnLine(`novabox rm -f ${kept.join(' ')}`);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
      removeRoot(root);
      rmSync(base, { recursive: true, force: true });
    }
  }, 120_000);

  it(
    'every command of every `sh` block exits as the README says, then nothing is left behind',
    async () => {
      const failures: string[] = [];
      let ran = 0;
      for (const block of blocks.filter((b) => b.info === 'sh' && !b.notRun)) {
        for (const c of block.commands) {
          const want = Number(/#\s*exit (\d+):/.exec(c.text)?.[1] ?? 0);
          const ctrlC = /until (it stops or )?Ctrl-C/.test(c.text);
          const r = await spawnLine(c.text, { tty: /\s-it\s/.test(c.text), interruptAfterMs: ctrlC ? 1500 : undefined });
          ran++;
          const ok = ctrlC ? r.code === 0 || r.code === 130 : r.code === want;
          if (!ok)
            failures.push(
              `README.md:${c.line}: ${c.text}\n  exit ${r.code ?? r.signal}, wanted ${ctrlC ? '0 or 130 after Ctrl-C' : want}\n  ${r.out.trim().split('\n').slice(-8).join('\n  ')}`,
            );
        }
      }
      expect(failures, failures.join('\n')).toEqual([]);
      expect(ran).toBeGreaterThan(40);

      // everything else the examples made goes with the servers
      const list = await spawnLine('novabox server list -f value -c ID');
      const ids = list.out.split('\n').filter((l) => /^[0-9a-f-]{36}$/.test(l));
      expect((await spawnLine(`novabox server delete --force --override-lock ${ids.join(' ')}`)).code).toBe(0);
      expect(psIds((await spawnLine('novabox ps -a -f json')).out)).toEqual([]);
      // the volumes outlive their servers by design (their data stays): the examples' go as a user removes them
      const ofList = (out: string) => out.split('\n').filter((l) => /^[0-9a-f-]{36}$/.test(l));
      const snaps = ofList((await spawnLine('novabox volume snapshot list -f value -c ID')).out);
      if (snaps.length) expect((await spawnLine(`novabox volume snapshot delete ${snaps.join(' ')}`)).code).toBe(0);
      const vols = ofList((await spawnLine('novabox volume list -f value -c ID')).out);
      if (vols.length) expect((await spawnLine(`novabox volume delete ${vols.join(' ')}`)).code).toBe(0);
      expect(vols.length).toBeGreaterThan(0);
      expect((await spawnLine('novabox network delete')).code).toBe(0);
      expect(execFileSync('ip', ['-n', ns, '-br', 'link'], { encoding: 'utf8' }).trim().split('\n')).toEqual([
        expect.stringMatching(/^lo\s/),
      ]);
      expect(execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'], { encoding: 'utf8' }).trim()).toBe('');
      const after = census(root);
      expect(after).toEqual(before);
      expect(after.cgroups).toEqual([]);
      expect(after.monitors).toEqual([]);
    },
    IN_GUEST ? 1_200_000 : 240_000,
  );
});
