/**
 * `image pull` for real: Debian's docker-registry listening on 127.0.0.1 (a free port,
 * its own config and storage in a temp dir; one open, one behind htpasswd), busybox pushed
 * there by skopeo from an OCI archive `image save` wrote in another state root, pulled by
 * tag and by digest, and run. Every refusal is one sentence and leaves the root as it was:
 * no staging dir, no image row, no layer, no skopeo process. Nothing but 127.0.0.1 is contacted.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { BIN, cliEnv, runCli, tempRoot } from '../helpers/run-cli.js';
import { missingCommands, skipEachIf } from '../helpers/skip.js';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? missingCommands(['skopeo', 'docker-registry', 'busybox']) : [];
/** bcrypt (cost 4, so each request's check is cheap) of the test password "s3cret" */
const HTPASSWD = 'tester:$2b$04$V0Wvs8j/y.hhcbz6G.q5CuewnazyGnlyw7QydxdSI9V3YQ9vHV2IK\n';
const CREDS = 'tester:s3cret';

/** A port nothing listens on right now (the kernel's pick, released). */
async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise((ok) => s.close(ok));
  return port;
}

interface Registry {
  port: number;
  proc: ChildProcess;
  log: () => string;
}

/** docker-registry serving `dir`'s storage on 127.0.0.1:port, ready when /v2/ answers. */
async function startRegistry(dir: string, name: string, htpasswd?: string): Promise<Registry> {
  const port = await freePort();
  const auth = htpasswd ? `auth:\n  htpasswd:\n    realm: novabox-test\n    path: ${join(dir, `${name}.htpasswd`)}\n` : '';
  if (htpasswd) writeFileSync(join(dir, `${name}.htpasswd`), htpasswd);
  const config = join(dir, `${name}.yml`);
  writeFileSync(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, `${name}-storage`)}\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d) => (log += d));
  for (let i = 0; i < 100; i++) {
    const status = await new Promise<number>((ok) => {
      const q = request({ host: '127.0.0.1', port, path: '/v2/' }, (res) => {
        res.resume();
        ok(res.statusCode ?? 0);
      });
      q.on('error', () => ok(0));
      q.end();
    });
    if (status === 200 || status === 401) return { port, proc, log: () => log };
    if (proc.exitCode !== null) break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`docker-registry did not start on 127.0.0.1:${port}: ${log}`);
}

async function stop(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((ok) => proc.once('exit', ok));
  proc.kill('SIGTERM');
  await gone;
}

/** skopeo processes whose command line names `needle` (a pull's own, left behind, would be a leak). */
function skopeoProcesses(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('skopeo') && argv.some((a) => a.includes(needle))) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

describe.skipIf(!isRoot)('novabox image pull (root, a real registry on 127.0.0.1)', () => {
  skipEachIf(missing.length ? `missing ${missing.join(', ')} (apt-get install skopeo docker-registry busybox-static)` : undefined);
  let root: string;
  let removeRoot: () => void;
  let src: { root: string; remove: () => void };
  let work: string;
  let open: Registry;
  let locked: Registry;
  let before: Census;
  let beforeStore: string[];
  let digest: string;
  const nb = (args: string[], r = root) => runCli(args, { root: r, timeoutMs: 60_000 });
  const skopeo = (...args: string[]) => {
    const r = spawnSync('skopeo', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const reg = (r: Registry, path: string) => `docker://127.0.0.1:${r.port}/${path}`;
  const list = (dir: string): string[] =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
          e.isDirectory() && !dir.includes('/layers/') ? [`${e.name}/`, ...list(join(dir, e.name)).map((f) => `${e.name}/${f}`)] : [e.name],
        )
      : [];
  /** the store as a pull may change it: image rows, published refs, layers, blobs, staging */
  const store = async () => [
    ...(JSON.parse((await nb(['image', 'list', '-f', 'json'])).stdout) as { ID: string; Name: string; Status: string }[]).map(
      (i) => `row ${i.ID} ${i.Name} ${i.Status}`,
    ),
    ...['images', 'layers', 'blobs', 'tmp'].flatMap((d) => list(join(root, d)).map((f) => `${d}/${f}`)),
  ];
  const show = async (name: string) => {
    const r = await nb(['image', 'show', name, '-f', 'json']);
    expect(r.stderr).toBe('');
    return JSON.parse(r.stdout) as { id: string; name: string; status: string; properties: Record<string, string> };
  };

  beforeAll(async () => {
    if (missing.length) return;
    ({ root, remove: removeRoot } = tempRoot('nbx-pull-'));
    src = tempRoot('nbx-pullsrc-');
    work = mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), 'nbx-pullwork-'));
    open = await startRegistry(work, 'open');
    locked = await startRegistry(work, 'locked', HTPASSWD);
    // busybox as an OCI archive, from another root: the pulling root has none of its layers
    const bb = join(work, 'busybox.tar');
    expect((await nb(['image', 'save', 'busybox', '--file', bb], src.root)).exitCode).toBe(0);
    expect((await nb(['image', 'set', '--env', 'FLAVOUR=other', 'busybox'], src.root)).exitCode).toBe(0);
    const other = join(work, 'other.tar');
    expect((await nb(['image', 'save', 'busybox', '--file', other], src.root)).exitCode).toBe(0);
    skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${bb}`, reg(open, 'test/busybox:1.0'));
    skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${other}`, reg(open, 'test/other:1'));
    skopeo('copy', '--quiet', '--dest-tls-verify=false', `--dest-creds=${CREDS}`, `oci-archive:${bb}`, reg(locked, 'private/busybox:1.0'));
    const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', reg(open, 'test/busybox:1.0')]).stdout;
    digest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
  }, 120_000);
  afterAll(async () => {
    await stop(open?.proc);
    await stop(locked?.proc);
    removeRoot?.();
    src?.remove();
    if (work) rmSync(work, { recursive: true, force: true });
  });
  beforeEach(async () => {
    if (missing.length) return;
    before = census(root);
    beforeStore = await store();
  });
  afterEach(async () => {
    if (missing.length) return;
    expect(census(root)).toEqual(before);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    expect(skopeoProcesses(String(open.port))).toEqual([]);
  });

  /** a refusal: one sentence, the exit code, and the store exactly as it was */
  async function refused(args: string[], exitCode: number, sentence: RegExp) {
    const r = await nb(['image', 'pull', ...args]);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(sentence);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.exitCode).toBe(exitCode);
    expect(await store()).toEqual(beforeStore);
  }

  it('pulls by tag with its provenance, again idempotently, and runs it', async () => {
    const t0 = performance.now();
    const r = await nb(['image', 'pull', '--tls-verify=false', reg(open, 'test/busybox:1.0'), '-f', 'json']);
    const pullMs = performance.now() - t0;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const img = JSON.parse(r.stdout);
    expect(img).toMatchObject({
      name: 'busybox:1.0',
      status: 'active',
      properties: {
        novabox_source: 'pull',
        novabox_pull_ref: reg(open, 'test/busybox:1.0'),
        novabox_pull_digest: digest,
        architecture: 'amd64',
      },
    });
    console.log(`image pull busybox (1 layer, ~1 MiB gzip) from 127.0.0.1: ${pullMs.toFixed(0)} ms`);
    // its layer was unpacked into the store (this root had none of busybox's)
    const [layer] = img.properties.layers.split(',');
    expect(existsSync(join(root, 'layers/sha256', layer.slice(7), 'bin/busybox'))).toBe(true);
    expect((await show('busybox:1.0')).properties.novabox_pull_digest).toBe(digest);

    const stored = await store();
    const again = await nb(['image', 'pull', '--tls-verify=false', reg(open, 'test/busybox:1.0'), '-f', 'value', '-c', 'id']);
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect(again.stdout.trim()).toBe(img.id);
    expect(await store()).toEqual(stored);

    const run = await nb(['run', '--rm', '--network', 'none', 'busybox:1.0', 'echo', 'hi']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('hi\n');
    expect(run.exitCode).toBe(0);
  });

  it('pulls by digest, sharing the layers, and with credentials', async () => {
    const first = await show('busybox:1.0');
    const layers = readdirSync(join(root, 'layers/sha256'));
    const r = await nb(['image', 'pull', '--tls-verify=false', reg(open, `test/busybox@${digest}`), '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const img = JSON.parse(r.stdout);
    expect(img.name).toBe(`busybox@${digest}`);
    expect(img.id).not.toBe(first.id);
    expect(img.properties.novabox_pull_digest).toBe(digest);
    expect(img.properties.layers).toBe(first.properties.layers);
    expect(readdirSync(join(root, 'layers/sha256'))).toEqual(layers);

    // skopeo behind a wrapper that logs its argv: the password must not be on its command line
    const bin = join(work, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'skopeo'), `#!/bin/sh\necho "$*" >> ${join(work, 'skopeo-argv')}\nexec /usr/bin/skopeo "$@"\n`, {
      mode: 0o755,
    });
    const locked1 = await runCli(
      ['image', 'pull', '--tls-verify=false', '--creds', CREDS, '--name', 'private-bb', reg(locked, 'private/busybox:1.0'), '-f', 'json'],
      { root, env: { PATH: `${bin}:${process.env.PATH}` }, timeoutMs: 60_000 },
    );
    expect(locked1.stderr).toBe('');
    expect(locked1.exitCode).toBe(0);
    expect(JSON.parse(locked1.stdout).properties).toMatchObject({ novabox_pull_digest: digest, layers: first.properties.layers });
    expect(readdirSync(join(root, 'layers/sha256'))).toEqual(layers);
    const argv = readFileSync(join(work, 'skopeo-argv'), 'utf8');
    expect(argv).toMatch(
      /^inspect --raw --authfile \S+ --tls-verify=false docker:.*\ncopy --quiet --src-authfile \S+ --src-tls-verify=false docker:/,
    );
    expect(argv).not.toContain('s3cret');

    for (const name of [`busybox@${digest}`, 'private-bb']) expect((await nb(['image', 'delete', name])).exitCode).toBe(0);
  });

  it('refuses bad input in one sentence and leaves nothing', async () => {
    const closed = await freePort();
    await refused(
      ['--tls-verify=false', `docker://127.0.0.1:${closed}/test/busybox:1.0`],
      1,
      /^novabox: cannot reach registry 127\.0\.0\.1:\d+: connection refused$/m,
    );
    await refused(
      ['--tls-verify=false', reg(open, 'test/nope:1')],
      3,
      /^novabox: image docker:\/\/127\.0\.0\.1:\d+\/test\/nope:1 not found in registry/m,
    );
    await refused(['--tls-verify=false', reg(open, 'test/busybox:2')], 3, /not found in registry/);
    await refused(['--tls-verify=false', reg(open, `test/busybox@sha256:${'0'.repeat(64)}`)], 3, /not found in registry/);
    await refused([reg(open, 'test/busybox:1.0')], 2, /speaks plain HTTP, not HTTPS: pass --tls-verify=false/);
    await refused(['--tls-verify=false', reg(locked, 'private/busybox:1.0')], 2, /requires credentials .* pass --creds/);
    await refused(['--tls-verify=false', '--creds', 'tester:wrong', reg(locked, 'private/busybox:1.0')], 2, /refused the credentials/);
    await refused(['--tls-verify=false', '--creds', 'nocolon', reg(locked, 'private/busybox:1.0')], 2, /expected USER:PASSWORD/);
    await refused(
      [`docker://127.0.0.1:${open.port}/Test/busybox`],
      2,
      /^novabox: invalid image reference .*: repository names are lowercase$/m,
    );
    await refused([`docker://127.0.0.1:${open.port}/test/busybox:1@sha256:${'0'.repeat(64)}`], 2, /a tag or a digest, not both/);
    await refused(['127.0.0.1/test/busybox'], 2, /must start with a transport/);
    await refused([`http://127.0.0.1:${open.port}/test/busybox`], 2, /^novabox: unknown transport "http" in/m);
    await refused(['--tls-verify=maybe', reg(open, 'test/busybox:1.0')], 2, /invalid --tls-verify "maybe"/);
    await refused(['oci-archive:/nonexistent/busybox.tar'], 3, /no such file or directory: \/nonexistent\/busybox\.tar/);
    const notOci = join(work, 'docker.tar');
    skopeo('copy', '--quiet', '--src-tls-verify=false', reg(open, 'test/busybox:1.0'), `docker-archive:${notOci}`);
    await refused([`oci-archive:${notOci}`], 2, /^novabox: \S+docker\.tar is not an OCI archive: it has no index\.json$/m);
    await refused([`oci-archive:${join(work, 'open.yml')}`], 2, /^novabox: \S+open\.yml is not a tar archive$/m);
    // the name holds another image (the tag moved): refused, the old one kept
    await refused(
      ['--tls-verify=false', '--name', 'busybox:1.0', reg(open, 'test/other:1')],
      4,
      /an image named "busybox:1\.0" exists already \(it holds sha256:[0-9a-f]{64} of .*, the reference now names sha256:[0-9a-f]{64}\): delete it or pull with --name/,
    );
  });

  it('makes one image of pulls of one name at once', async () => {
    const pulls = await Promise.all(
      [1, 2, 3, 4].map(() =>
        nb(['image', 'pull', '--tls-verify=false', '--name', 'concurrent', reg(open, 'test/other:1'), '-f', 'value', '-c', 'id']),
      ),
    );
    for (const p of pulls) {
      expect(p.stderr).toBe('');
      expect(p.exitCode).toBe(0);
    }
    expect(new Set(pulls.map((p) => p.stdout)).size).toBe(1);
    const rows = JSON.parse((await nb(['image', 'list', '--name', 'concurrent', '-f', 'json'])).stdout) as { Status: string }[];
    expect(rows.map((r) => r.Status)).toEqual(['active']);
    expect((await nb(['image', 'delete', 'concurrent'])).exitCode).toBe(0);
  });

  it('pulls from a local OCI archive too', async () => {
    const r = await nb(['image', 'pull', `oci-archive:${join(work, 'other.tar')}`, '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const img = JSON.parse(r.stdout);
    expect(img).toMatchObject({
      name: 'other',
      properties: { novabox_source: 'pull', novabox_pull_ref: `oci-archive:${join(work, 'other.tar')}` },
    });
    const run = await nb(['run', '--rm', '--network', 'none', 'other', 'sh', '-c', 'echo $FLAVOUR']);
    expect(run.stdout).toBe('other\n');
    expect((await nb(['image', 'delete', 'other'])).exitCode).toBe(0);
  });

  it('keeps nothing when interrupted while the layers are unpacked (SIGINT)', async () => {
    // a 64 MiB layer: SIGINT once the import's staging dir exists, mid-extraction (or, on a
    // fast disk, after it: the image just made is deleted); either way nothing is kept
    const fs = join(work, 'bigfs');
    mkdirSync(join(fs, 'data'), { recursive: true });
    writeFileSync(join(fs, 'data/blob'), randomBytes(64 << 20));
    expect((await nb(['image', 'create', '--file', fs, 'big'], src.root)).exitCode).toBe(0);
    const big = join(work, 'big.tar');
    expect((await nb(['image', 'save', 'big', '--file', big], src.root)).exitCode).toBe(0);
    rmSync(fs, { recursive: true });
    const child = spawn(process.execPath, [BIN, 'image', 'pull', `oci-archive:${big}`], {
      env: cliEnv(root),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
    while (!readdirSync(join(root, 'tmp')).some((d) => d.startsWith('import-'))) await new Promise((ok) => setTimeout(ok, 5));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/^novabox: image pull of .* interrupted by SIGINT: nothing was kept\n$/);
    expect(await store()).toEqual(beforeStore);
    rmSync(big);
  });

  it('keeps nothing when interrupted while skopeo copies (SIGINT)', async () => {
    // a proxy to the registry that answers everything but the layer blobs, which hang
    const hung: ServerResponse[] = [];
    let blobAsked: () => void = () => {};
    const asked = new Promise<void>((ok) => (blobAsked = ok));
    const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (/\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET') {
        hung.push(res);
        blobAsked();
        return;
      }
      const up = request({ host: '127.0.0.1', port: open.port, path: req.url, method: req.method, headers: req.headers }, (u) => {
        res.writeHead(u.statusCode ?? 502, u.headers);
        u.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
    const port = (proxy.address() as AddressInfo).port;
    try {
      const child = spawn(process.execPath, [BIN, 'image', 'pull', '--tls-verify=false', `docker://127.0.0.1:${port}/test/other:1`], {
        env: cliEnv(root),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const exited = new Promise<number | null>((ok) => child.on('close', (code) => ok(code)));
      await asked;
      expect(readdirSync(join(root, 'tmp')).filter((d) => d.startsWith('pull-'))).toHaveLength(1);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toMatch(/^novabox: image pull of .* interrupted by SIGINT: nothing was kept\n$/);
      expect(skopeoProcesses(String(port))).toEqual([]);
      expect(await store()).toEqual(beforeStore);
    } finally {
      for (const r of hung) r.destroy();
      proxy.closeAllConnections();
      await new Promise((ok) => proxy.close(ok));
    }
  });
});
