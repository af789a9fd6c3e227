/**
 * bin/novabox-oci (C, native-bindings/src/oci.c) and bin/novabox-oci-js (src/oci/main.ts)
 * read one state format (docs/oci-state.md): the same fixture state directories through
 * both give the same answers. A copy of the C executable alone in a directory (no JS front
 * end beside it) shows which cases the C does itself: those succeed there, every other
 * case fails there in one sentence naming the missing front end.
 * Fixtures only: the "init" is a sleep of this test's, the cgroup directories plain ones.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/run-cli.js';
import { skipEachIf } from '../helpers/skip.js';

const C = join(ROOT, 'bin/novabox-oci');
const JS = join(ROOT, 'bin/novabox-oci-js');
const skip = !existsSync(C) || !existsSync(JS) ? 'bin/novabox-oci is not built (npm run build)' : undefined;

let work: string;
let root: string;
/** the C executable with no JS front end beside it */
let alone: string;
const children: ChildProcess[] = [];

function run(bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(bin, ['--root', root, ...args], { encoding: 'utf8', env, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function procStart(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

/** A live process standing in for a container's init. */
function sleeper(): number {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(c);
  return c.pid!;
}

/** A state directory as `create` writes it (src/runtime/oci/container.ts OciRecord). */
function fixture(id: string, over: Record<string, unknown> = {}, markers: string[] = []): string {
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  const record = {
    id,
    bundle: `/bundles/${id}`,
    rootfs: `/bundles/${id}/rootfs`,
    pid: 0,
    pidStart: 0,
    creator: 0,
    creatorStart: 0,
    cgroupPath: `novabox-oci/${id}`,
    cgroupDirs: [],
    cgroupParents: [],
    gate: 'pipe:[1]',
    created: '2026-01-02T03:04:05.678Z',
    annotations: {},
    hooks: { poststart: [], poststop: [] },
    ...over,
  };
  writeFileSync(join(dir, 'state.json'), JSON.stringify(record));
  for (const m of markers) writeFileSync(join(dir, m), '');
  return dir;
}

describe('novabox-oci: the C verbs and the JS front end on one state format', () => {
  skipEachIf(skip);

  beforeAll(() => {
    if (skip) return;
    work = mkdtempSync(join(tmpdir(), 'oci-paths-'));
    root = join(work, 'root');
    mkdirSync(join(work, 'alone'));
    alone = join(work, 'alone', 'novabox-oci');
    copyFileSync(C, alone);
    spawnSync('chmod', ['755', alone]);
  });

  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('state: the same JSON from C and JS for created, running, paused, stopped and creating, annotations included', () => {
    const pid = sleeper();
    const live = { pid, pidStart: procStart(pid) };
    fixture('created', { ...live, annotations: { 'io.x/y': 'a "quoted" ü\nline', n: '' } });
    fixture('running', live, ['started']);
    fixture('paused', live, ['started', 'paused']);
    fixture('stopped', { pid: 999_999_999, pidStart: 1 }, ['started']);
    fixture('reused', { pid, pidStart: procStart(pid) + 1 }, ['started']);
    fixture('creating', { creator: process.pid, creatorStart: procStart(process.pid) });
    const want = {
      created: 'created',
      running: 'running',
      paused: 'paused',
      stopped: 'stopped',
      reused: 'stopped',
      creating: 'creating',
    };
    for (const [id, status] of Object.entries(want)) {
      const c = run(alone, ['state', id]);
      const js = run(JS, ['state', id]);
      expect(c).toMatchObject({ code: 0, stderr: '' });
      expect(c.stdout).toBe(js.stdout);
      expect(JSON.parse(c.stdout)).toMatchObject({ ociVersion: '1.0.2', id, status, bundle: `/bundles/${id}`, owner: '' });
    }
    expect(JSON.parse(run(alone, ['state', 'created']).stdout).annotations).toEqual({ 'io.x/y': 'a "quoted" ü\nline', n: '' });
    expect(JSON.parse(run(alone, ['state', 'stopped']).stdout).pid).toBe(0);
    // a directory without its record yet (create between its mkdir and its first write) is the JS's
    mkdirSync(join(root, 'early'));
    expect(JSON.parse(run(C, ['state', 'early']).stdout).status).toBe('stopped');
    expect(run(alone, ['state', 'early']).code).toBe(1);
    for (const args of [['state', 'missing'], ['state', 'bad/id'], ['--debug', 'state', 'created'], ['features']]) {
      const r = run(alone, args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^novabox-oci: cannot run its JS front end \(novabox-oci-js beside .*\): No such file or directory\n$/);
    }
    const missing = run(C, ['--log', join(work, 'log'), '--log-format', 'json', 'state', 'missing']);
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: 'novabox-oci: container "missing" does not exist\n' });
    expect(JSON.parse(readFileSync(join(work, 'log'), 'utf8'))).toMatchObject({
      level: 'error',
      msg: 'container "missing" does not exist',
    });
  });

  it('kill: the C signals a live init; a stopped one is refused by the JS in its sentence', () => {
    const pid = sleeper();
    const child = children[children.length - 1];
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
    fixture('k', { pid, pidStart: procStart(pid) }, ['started']);
    expect(run(alone, ['kill', 'k', 'usr1'])).toMatchObject({ code: 0, stderr: '' });
    fixture('gone', { pid: 999_999_999, pidStart: 1 }, ['started']);
    expect(run(C, ['kill', 'gone', 'TERM'])).toMatchObject({
      code: 1,
      stderr: 'novabox-oci: container "gone" is stopped: there is no process to signal\n',
    });
    expect(run(C, ['kill', 'k', 'NOPE']).stderr).toBe('novabox-oci: kill: "NOPE" is not a signal\n');
    return expect(exited).resolves.toBe('SIGUSR1');
  });

  it('delete: the C removes a stopped container (its cgroup directories, empty parents, its state); the JS keeps what it refuses', () => {
    const cg = join(work, 'cg');
    const dirs = [join(cg, 'a', 'novabox-oci', 'd'), join(cg, 'b', 'novabox-oci', 'd')];
    for (const d of dirs) mkdirSync(d, { recursive: true });
    mkdirSync(join(cg, 'b', 'novabox-oci', 'other'));
    const parents = [join(cg, 'a', 'novabox-oci'), join(cg, 'b', 'novabox-oci')];
    fixture('d', { pid: 999_999_999, pidStart: 1, cgroupDirs: dirs, cgroupParents: parents }, ['started']);
    expect(run(alone, ['delete', 'd'])).toMatchObject({ code: 0, stderr: '' });
    expect(existsSync(join(root, 'd'))).toBe(false);
    for (const d of dirs) expect(existsSync(d)).toBe(false);
    // a parent still holding another container's cgroup stays
    expect(existsSync(parents[0])).toBe(false);
    expect(existsSync(join(cg, 'b', 'novabox-oci', 'other'))).toBe(true);
    // --force of nothing is done, in C; without --force it is the JS's error
    expect(run(alone, ['delete', '--force', 'd'])).toMatchObject({ code: 0, stderr: '' });
    expect(run(C, ['delete', 'd'])).toMatchObject({ code: 1, stderr: 'novabox-oci: container "d" does not exist\n' });
    // a running one: refused by the JS, nothing removed
    const pid = sleeper();
    fixture('r', { pid, pidStart: procStart(pid) }, ['started']);
    expect(run(C, ['delete', 'r'])).toMatchObject({
      code: 1,
      stderr: 'novabox-oci: container "r" is running: stop it first or use delete --force\n',
    });
    expect(existsSync(join(root, 'r', 'state.json'))).toBe(true);
    // a record without cgroupDirs (an older create) is the JS's
    fixture('old', { pid: 999_999_999, pidStart: 1, cgroupDirs: undefined });
    expect(run(alone, ['delete', 'old']).code).toBe(1);
    expect(existsSync(join(root, 'old', 'state.json'))).toBe(true);
    // so is one without a mount namespace (its mounts in the host's are the JS's to undo)
    const hm = join(cg, 'hm');
    mkdirSync(hm);
    fixture('hm', { pid: 999_999_999, pidStart: 1, cgroupDirs: [hm], cgroupParents: [], hostMountsBefore: [] });
    expect(run(alone, ['delete', 'hm']).code).toBe(1);
    expect(existsSync(join(root, 'hm', 'state.json'))).toBe(true);
    expect(run(C, ['delete', 'hm'])).toMatchObject({ code: 0, stderr: '' });
    expect(existsSync(join(root, 'hm'))).toBe(false);
  });

  it("start: the C's own sentence once its started marker exists (fd 5 is not a pipe), on stderr and as a JSON log line", () => {
    const file = join(work, 'not-a-pipe');
    writeFileSync(file, '');
    const holder = spawn('sh', ['-c', `exec 5<>"${file}"; exec sleep 60`], { stdio: 'ignore' });
    children.push(holder);
    const pid = holder.pid!;
    let gate = '';
    const until = Date.now() + 5000;
    while (Date.now() < until && gate !== file) gate = spawnSync('readlink', [`/proc/${pid}/fd/5`], { encoding: 'utf8' }).stdout.trim();
    expect(gate).toBe(file);
    fixture('np', { pid, pidStart: procStart(pid), gate });
    const log = join(work, 'np.log');
    const r = run(alone, ['--log', log, '--log-format', 'json', 'start', 'np']);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: 'novabox-oci: container "np" is not waiting to be started\n' });
    const line = JSON.parse(readFileSync(log, 'utf8'));
    expect(line).toEqual({ level: 'error', msg: 'container "np" is not waiting to be started', time: expect.any(String) });
    expect(new Date(line.time).toISOString()).toBe(line.time);
    expect(readFileSync(file, 'utf8')).toBe('');
    // the marker stays: the JS refuses a second start in its own words
    expect(existsSync(join(root, 'np', 'started'))).toBe(true);
    expect(run(C, ['start', 'np']).stderr).toBe('novabox-oci: container "np" is running, not created: it cannot be started\n');
    // and text logs as the JS writes them
    const text = join(work, 'np.txt');
    rmSync(join(root, 'np', 'started'));
    expect(run(alone, ['--log', text, 'start', 'np']).code).toBe(1);
    expect(readFileSync(text, 'utf8')).toMatch(
      /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" level=error msg="container \\"np\\" is not waiting to be started"\n$/,
    );
  });

  it('start: the C writes G into the recorded gate once; a second start is refused', () => {
    // a fifo reader standing in for an init at its gate: fd 5 of a shell reading one byte
    const fifo = join(work, 'gate');
    rmSync(fifo, { force: true });
    spawnSync('mkfifo', [fifo]);
    const reader = spawn('sh', ['-c', `exec 5<>"${fifo}"; head -c1 <&5 > "${fifo}.got"`], { stdio: 'ignore' });
    children.push(reader);
    const pid = reader.pid!;
    let gate = '';
    const until = Date.now() + 5000;
    while (Date.now() < until && !gate.startsWith('/')) {
      try {
        gate = spawnSync('readlink', [`/proc/${pid}/fd/5`], { encoding: 'utf8' }).stdout.trim();
      } catch {
        /* not yet */
      }
    }
    fixture('s', { pid, pidStart: procStart(pid), gate });
    const done = new Promise((resolve) => reader.on('exit', resolve));
    expect(run(alone, ['start', 's'])).toMatchObject({ code: 0, stderr: '' });
    expect(existsSync(join(root, 's', 'started'))).toBe(true);
    return done.then(() => {
      expect(readFileSync(`${fifo}.got`, 'utf8')).toBe('G');
      const again = run(C, ['start', 's']);
      expect(again.code).toBe(1);
      expect(again.stderr).toBe('novabox-oci: container "s" is stopped, not created: it cannot be started\n');
    });
  });
});
