/**
 * `novabox serve` is the parent of the monitors of the servers it starts (the worker thread
 * of stop/delete/reboot too): every monitor that exits must be waited for, or it stays a
 * zombie under serve for as long as serve runs. 50 create/delete cycles through the API,
 * and stop, start and reboot, leave no zombie child; then the census.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { tempRoot } from '../helpers/run-cli.js';
import { startServe, tokenFor, type Serve } from './serve.js';

const isRoot = process.getuid?.() === 0;

/** The children of a process (of all its threads), with their name and state letter. */
function children(pid: number): { pid: number; comm: string; state: string }[] {
  const out: { pid: number; comm: string; state: string }[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const c of text.split(' ').filter((x) => x.trim())) {
      try {
        const stat = readFileSync(`/proc/${c}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        out.push({ pid: Number(c), comm: stat.slice(stat.indexOf('(') + 1, close), state: stat[close + 2]! });
      } catch {
        /* reaped meanwhile */
      }
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('serve reaps the monitors of its servers (root, real containers)', () => {
  let root: string;
  let removeRoot: () => void;
  let serve: Serve;
  let before: Census;
  let token = '';
  let imageId = '';
  const password = randomBytes(12).toString('hex');

  const api = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${serve.url}${path}`, {
      method,
      headers: { 'x-auth-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : undefined };
  };
  const waitStatus = async (id: string, want: string) => {
    for (let i = 0; i < 600; i++) {
      const r = await api('GET', `/compute/v2.1/servers/${id}`);
      if (want === 'gone' ? r.status === 404 : r.json?.server?.status === want) return;
      if (r.json?.server?.status === 'ERROR') throw new Error(`server ${id} went to ERROR: ${JSON.stringify(r.json.server.fault)}`);
      await sleep(25);
    }
    throw new Error(`server ${id} did not become ${want}`);
  };
  const create = async (name: string) => {
    const r = await api('POST', '/compute/v2.1/servers', { server: { name, imageRef: imageId, flavorRef: '1' } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    await waitStatus(r.json.server.id, 'ACTIVE');
    return r.json.server.id as string;
  };
  const remove = async (id: string) => {
    expect((await api('DELETE', `/compute/v2.1/servers/${id}`)).status).toBe(204);
    await waitStatus(id, 'gone');
  };
  /** zombies under serve, after a short grace for the SIGCHLD of the last exit */
  const zombies = async () => {
    let z = children(serve.proc.pid!).filter((c) => c.state === 'Z');
    for (let i = 0; i < 40 && z.length; i++) {
      await sleep(25);
      z = children(serve.proc.pid!).filter((c) => c.state === 'Z');
    }
    return z;
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot } = tempRoot('nbx-reap-'));
    before = census(root);
    serve = await startServe(root, { NOVABOX_ADMIN_PASSWORD: password });
    token = await tokenFor(serve.url, 'admin', password, 'admin');
    imageId = (await api('GET', '/image/v2/images?name=busybox')).json.images[0].id;
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    removeRoot?.();
  });

  it('50 create/delete cycles (5 at a time) leave no zombie', async () => {
    for (let round = 0; round < 10; round++) {
      const ids = await Promise.all([0, 1, 2, 3, 4].map((k) => create(`r${round}-${k}`)));
      // a running server's monitor is a live child of serve
      const live = children(serve.proc.pid!).filter((c) => c.comm === 'novabox-monitor');
      expect(live.length).toBe(5);
      await Promise.all(ids.map(remove));
      expect(await zombies()).toEqual([]);
    }
    expect(children(serve.proc.pid!).filter((c) => c.comm === 'novabox-monitor')).toEqual([]);
  }, 180_000);

  it('stop, start, reboot (on the worker thread) and an init that exits by itself leave no zombie', async () => {
    const id = await create('cycle');
    for (let i = 0; i < 3; i++) {
      expect((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-stop': null })).status).toBe(202);
      await waitStatus(id, 'SHUTOFF');
      expect(await zombies()).toEqual([]);
      expect((await api('POST', `/compute/v2.1/servers/${id}/action`, { 'os-start': null })).status).toBe(202);
      await waitStatus(id, 'ACTIVE');
      expect((await api('POST', `/compute/v2.1/servers/${id}/action`, { reboot: { type: 'HARD' } })).status).toBe(202);
      await waitStatus(id, 'ACTIVE');
      expect(await zombies()).toEqual([]);
    }
    // the server's init killed from the host: the monitor exits without any API call
    const [monitor] = children(serve.proc.pid!).filter((c) => c.comm === 'novabox-monitor');
    const init = readFileSync(`/proc/${monitor!.pid}/task/${monitor!.pid}/children`, 'utf8').trim().split(' ')[0];
    process.kill(Number(init), 'SIGKILL');
    await waitStatus(id, 'SHUTOFF');
    expect(await zombies()).toEqual([]);
    await remove(id);
    expect(children(serve.proc.pid!).filter((c) => c.comm === 'novabox-monitor')).toEqual([]);
  }, 120_000);

  it('stops on SIGTERM and leaves nothing behind', async () => {
    expect(await serve.stop('SIGTERM')).toBe(0);
    const strip = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/') && !f.startsWith('clouds')) });
    expect(strip(census(root))).toEqual(strip(before));
  });
});
