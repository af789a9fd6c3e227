import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newServer, useTempDirs } from './temp-store.js';

const t = useTempDirs();
const WORKERS = 8;
const CYCLES = 50;
let outDir: string;
let worker: string;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), 'novabox-store-worker-'));
  worker = join(outDir, 'store-worker.cjs');
  await build({
    entryPoints: [resolve(__dirname, 'fixtures/store-worker.ts')],
    outfile: worker,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // better-sqlite3's JS is bundled, as in dist/; its addon is found from the source tree.
    external: ['*.node'],
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(resolve(__dirname, '../../../src/store/db.ts')).href) },
    logLevel: 'error',
  });
});

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Starts every worker, then lets them all go at once; resolves when all exited 0. */
async function race(args: string[][]): Promise<void> {
  const children = args.map((a) => fork(worker, a, { execArgv: [], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] }));
  const ended = children.map(
    (c) =>
      new Promise<void>((ok, fail) => {
        let stderr = '';
        c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`worker exited ${code}: ${stderr}`))));
      }),
  );
  await Promise.all(children.map((c) => new Promise((ok) => c.once('message', ok))));
  for (const c of children) c.send('go');
  await Promise.all(ended);
}

describe('many processes on one database', () => {
  it('open a new database at once: one migration, one identity', async () => {
    const path = join(t.dir(), 'novabox.db');
    await race(Array.from({ length: WORKERS }, () => [path, 'open', '0']));
    const s = t.open(path);
    expect(s.flavors.list()).toHaveLength(6);
    expect(s.db.prepare('SELECT count(*) AS n FROM settings').get()).toEqual({ n: 2 });
  });

  it(`lose no update: ${WORKERS} × ${CYCLES} read-modify-write transactions`, async () => {
    const s = t.open();
    const srv = s.servers.insert(newServer({ metadata: { n: '0' } }));
    await race(Array.from({ length: WORKERS }, () => [s.path, 'counter', String(CYCLES), srv.id]));
    expect(s.servers.get(srv.id)!.metadata.n).toBe(String(WORKERS * CYCLES));
  });

  it(`transition lets one process in at a time: ${WORKERS} × ${CYCLES}`, async () => {
    const s = t.open();
    const srv = s.servers.insert(newServer({ metadata: { n: '0' } }));
    await race(Array.from({ length: WORKERS }, () => [s.path, 'transition', String(CYCLES), srv.id]));
    expect(s.servers.get(srv.id)).toMatchObject({ taskState: null, metadata: { n: String(WORKERS * CYCLES) } });
  });
});
