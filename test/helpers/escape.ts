/**
 * The escape corpus's tools (test/integration/security-*.test.ts): the attacker program
 * (test/security/escape.c, built statically here: busybox has no compiler), images that
 * carry it, a marker file on the host that no attack may read or write beside,
 * and the parser of the attacker's findings.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { IN_GUEST, ROOT, runCli } from './run-cli.js';

const SOURCE = join(ROOT, 'test/security/escape.c');
const BUILT = join(ROOT, 'test/security/build/nbx-escape');

/**
 * The attacker, built with `cc -static` when the source is newer than the binary. The
 * QEMU guest has no compiler: it uses the binary the host's run built (the guest gets a
 * copy of the tree, build outputs included).
 */
export function attackerBinary(): string {
  const stale = !existsSync(BUILT) || statSync(BUILT).mtimeMs < statSync(SOURCE).mtimeMs;
  if (stale) {
    const cc = spawnSync('sh', ['-c', 'command -v cc'], { encoding: 'utf8' }).stdout.trim();
    if (!cc) {
      throw new Error(`${BUILT} is missing or older than its source and there is no cc here: run the host's tests first (they build it)`);
    }
    mkdirSync(join(ROOT, 'test/security/build'), { recursive: true });
    execFileSync(cc, ['-static', '-O2', '-Wall', '-o', `${BUILT}.tmp`, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('mv', [`${BUILT}.tmp`, BUILT]);
  }
  return BUILT;
}

/**
 * A rootfs: static busybox with its applets in /bin, the attacker at /bin/nbx-escape,
 * and `extra` files (path -> content, made executable when it starts with "#!").
 */
export function attackRootfs(dir: string, extra: Record<string, string> = {}): void {
  for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'run', 'var/tmp']) mkdirSync(join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(dir, 'bin', a));
  copyFileSync(attackerBinary(), join(dir, 'bin/nbx-escape'));
  chmodSync(join(dir, 'bin/nbx-escape'), 0o755);
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
  chmodSync(join(dir, 'tmp'), 0o1777);
  for (const [p, content] of Object.entries(extra)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), content);
    if (content.startsWith('#!')) chmodSync(join(dir, p), 0o755);
  }
}

/**
 * Put the attacker (and `extra` files) into a running server's writable layer through
 * `server exec -i` (stdin from the file): no image import needed, which the QEMU guest
 * cannot do (its tar is busybox's; importing extracts with GNU tar).
 */
export async function installAttacker(root: string, server: string, extra: Record<string, string> = {}): Promise<void> {
  const fd = openSync(attackerBinary(), 'r');
  try {
    const r = await runCli(['server', 'exec', '-i', server, '--', 'sh', '-c', 'cat > /bin/nbx-escape && chmod 755 /bin/nbx-escape'], {
      root,
      spawn: { stdio: [fd, 'pipe', 'pipe'] },
    });
    if (r.exitCode !== 0) throw new Error(`installing the attacker into ${server}: ${r.exitCode} ${r.stderr}`);
  } finally {
    closeSync(fd);
  }
  for (const [p, content] of Object.entries(extra)) {
    const r = await runCli(['server', 'exec', '-i', server, '--', 'sh', '-c', `cat > ${p} && chmod 755 ${p}`], { root, input: content });
    if (r.exitCode !== 0) throw new Error(`writing ${p} into ${server}: ${r.exitCode} ${r.stderr}`);
  }
}

/** A host directory holding only the attacker, to bind into `run` containers read-only (`-v DIR:/x:ro`). */
export function attackerDir(): string {
  const dir = scratch('nbx-sec-bin-');
  copyFileSync(attackerBinary(), join(dir, 'nbx-escape'));
  chmodSync(join(dir, 'nbx-escape'), 0o755);
  chmodSync(dir, 0o755);
  return dir;
}

/** A plain tar of dir (symlinks kept as symlinks, absolute targets included). */
export function tarOf(dir: string, file: string): void {
  tar.c({ file, cwd: dir, sync: true, portable: false, preservePaths: true }, readdirSync(dir));
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** An OCI image layout of one uncompressed layer (the tar of rootfs) with this Cmd. */
export function ociOf(rootfs: string, layout: string, cmd: string[]): void {
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const layerTar = join(layout, 'layer.tar');
  tarOf(rootfs, layerTar);
  const layer = readFileSync(layerTar);
  rmSync(layerTar);
  const put = (b: Buffer | string) => {
    const d = sha256(b);
    writeFileSync(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: Buffer.byteLength(b) };
  };
  const l = put(layer);
  const config = put(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: cmd },
      rootfs: { type: 'layers', diff_ids: [l.digest] },
    }),
  );
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...l }],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
}

/** Import dir (a rootfs tar or an OCI layout) as image `name` of the state root. */
export async function importImage(root: string, name: string, file: string): Promise<void> {
  const r = await runCli(['image', 'create', '--file', file, name, '-f', 'value', '-c', 'status'], { root, timeoutMs: 120_000 });
  if (r.exitCode !== 0 || r.stdout !== 'active\n') throw new Error(`image create ${name}: ${r.exitCode} ${r.stderr}`);
}

/** A scratch directory on the host (removed by the caller). */
export function scratch(prefix: string): string {
  return mkdtempSync(join(process.env.NOVABOX_TEST_TMP ?? tmpdir(), prefix));
}

/**
 * A file on the host with unique content that the attacks try to reach: they climb to
 * the host's / and open NAME, a path relative to it (so the marker must sit where a
 * climb to the file system's root finds it: the host's /tmp here; in the QEMU guest,
 * whose processes run chrooted in a bind mount of the initramfs with a tmpfs on /tmp, its
 * root directory). An attack that reaches it reads that content or creates NAME.w.*
 * beside it.
 */
export interface HostMarker {
  /** the path relative to the host's root the attacker is given */
  name: string;
  path: string;
  content: string;
  /** files an attack created beside the marker */
  written(): string[];
  /** the marker as it was */
  intact(): boolean;
  remove(): void;
}

export function hostMarker(): HostMarker {
  const dir = IN_GUEST ? '/' : '/tmp';
  const base = `nbx-escape-marker-${randomBytes(8).toString('hex')}`;
  const path = join(dir, base);
  const content = `host-secret-${randomBytes(8).toString('hex')}\n`;
  writeFileSync(path, content, { mode: 0o600 });
  const written = () =>
    readdirSync(dir)
      .filter((f) => f.startsWith(`${base}.`))
      .map((f) => join(dir, f));
  return {
    name: path.slice(1),
    path,
    content,
    written,
    intact: () => existsSync(path) && readFileSync(path, 'utf8') === content,
    remove: () => {
      rmSync(path, { force: true });
      for (const f of written()) rmSync(f, { force: true });
    },
  };
}

export interface Finding {
  kind: string;
  pid: number;
  how: string;
  detail: string;
}

/** The attacker's `probe` output: its findings and its summary lines. */
export function parseProbe(out: string): { findings: Finding[]; loops: number; pids: number } {
  const findings: Finding[] = [];
  let loops = 0;
  let pids = 0;
  for (const line of out.split('\n')) {
    const s = /^SUMMARY loops=(\d+) pids=(\d+)/.exec(line);
    if (s) {
      loops += Number(s[1]);
      pids = Math.max(pids, Number(s[2]));
      continue;
    }
    const m = /^(READ|WROTE|EXE|EXEWRITE|EXEWERR|EXESEALED|NSMNT|SETNS) (\d+) (\S+) ?(.*)$/.exec(line);
    if (m) findings.push({ kind: m[1], pid: Number(m[2]), how: m[3], detail: m[4] });
  }
  return { findings, loops, pids };
}

/** dev:ino of the host's novabox binaries and of node, as the attacker prints them. */
export function hostBinaries(): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of [
    join(ROOT, 'native-bindings/build/novabox-monitor'),
    join(ROOT, 'native-bindings/build/novabox-init'),
    process.execPath,
  ]) {
    if (!existsSync(f)) continue;
    const st = statSync(f);
    out.set(`${st.dev}:${st.ino}`, f);
  }
  return out;
}

/**
 * What an attack reached, as sentences (empty: nothing): the marker read or written,
 * files created beside it, setns into a foreign mount namespace, an executable opened
 * for writing through /proc/<pid>/exe, a host binary opened through the /proc/<pid>/exe
 * of a process novabox started in the container. Pid 1's executable is the subject of
 * its own test (security-inside.test.ts): `pid1: true` counts it here too.
 */
export function breaches(findings: Finding[], marker: HostMarker, opts: { pid1?: boolean } = {}): string[] {
  const host = hostBinaries();
  const out: string[] = [];
  for (const f of findings) {
    if (f.kind === 'READ' || f.kind === 'WROTE' || f.kind === 'SETNS' || f.kind === 'EXEWRITE')
      out.push(`${f.kind} pid ${f.pid} via ${f.how} ${f.detail}`);
    if (f.kind === 'EXE' && host.has(f.how) && (f.pid !== 1 || opts.pid1))
      out.push(`EXE pid ${f.pid}: opened the host's ${host.get(f.how)} through /proc/${f.pid}/exe`);
  }
  for (const w of marker.written()) out.push(`created ${w} on the host`);
  if (!marker.intact()) out.push(`the host's ${marker.path} changed`);
  return out;
}

/** Distinct processes whose fds/cwd/root led to the host's marker (read or write). */
export function breachedPids(findings: Finding[]): number[] {
  return [...new Set(findings.filter((f) => f.kind === 'READ' || f.kind === 'WROTE').map((f) => f.pid))].sort((a, b) => a - b);
}
