/**
 * Published ports for real, through bin/novabox, as root: DNAT rules in the root's own
 * nftables table, reached from the host on 127.0.0.1 and on the bridge's address, and from
 * the server itself (hairpin); refused when taken; gone on stop, crash and delete; doctor
 * removes what nobody holds. Traffic only goes to loopback and to servers this file made
 * (busybox httpd inside, an HTTP GET of node's from the host, each bounded). Each test leaves the
 * census (veths, leases, nft tables, mounts, cgroups, …) as it found it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { createServer, type Server as NetServer } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { census, type Census } from '../helpers/census.js';
import { runCli, tempRoot } from '../helpers/run-cli.js';

const isRoot = process.getuid?.() === 0;
const hasNft = spawnSync('nft', ['--version'], { stdio: 'ignore' }).error === undefined;

/** A host port nothing listens on now: the kernel's pick (other test files publish too). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One HTTP GET, bounded (2 s): the body, or undefined (refused, reset, timed out). */
function get(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: 2000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/** A GET that retries while httpd starts (bounded: 3 s). */
async function getSoon(url: string): Promise<string | undefined> {
  const end = Date.now() + 15_000; // the guest's emulated CPUs start a container in seconds
  for (;;) {
    const body = await get(url);
    if (body !== undefined || Date.now() > end) return body;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!isRoot || !hasNft)('published ports (root, nftables)', () => {
  let root: string;
  let bridge: string;
  let subnet: string;
  let gateway: string;
  let removeRoot: () => void;
  let before: Census;
  const table = () => `novabox_${bridge}_ports`;
  const nb = (args: string[], opts: { timeoutMs?: number } = {}) => runCli(args, { root, ...opts });
  const create = async (name: string, extra: string[]) => {
    const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', ...extra, name, '-f', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    return JSON.parse(r.stdout) as { id: string; ports: string[]; addresses: { novabox: { addr: string }[] } };
  };
  /** busybox httpd in the server, answering its name */
  const serve = async (name: string) => {
    const r = await nb([
      'server',
      'exec',
      name,
      '--',
      'sh',
      '-c',
      `mkdir -p /www && echo hello-${name} > /www/index.html && httpd -p 80 -h /www`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  };
  /** the elements of the root's ports table, as nft prints them */
  const elements = () => {
    const r = spawnSync('nft', ['-j', 'list', 'maps', 'ip'], { encoding: 'utf8' });
    const doc = JSON.parse(r.stdout || '{"nftables":[]}') as { nftables: { map?: { table: string; name: string; elem?: unknown[] } }[] };
    return doc.nftables
      .filter((x) => x.map?.table === table())
      .flatMap((x) => (x.map!.elem ?? []).map((e) => `${x.map!.name} ${JSON.stringify(e)}`))
      .sort();
  };

  beforeAll(async () => {
    ({ root, remove: removeRoot, bridge, subnet } = tempRoot('nbx-ports-'));
    gateway = subnet.replace(/\.0\/24$/, '.1');
    const r = await runCli(['run', '--rm', 'busybox', 'true'], { root }); // builds the image
    expect(r.exitCode).toBe(0);
  });
  afterAll(() => {
    removeRoot?.();
    expect(existsSync(`/sys/class/net/${bridge}`)).toBe(false);
    expect(spawnSync('nft', ['list', 'table', 'ip', table()], { stdio: 'ignore' }).status).not.toBe(0);
  });
  beforeEach(() => {
    before = census(root);
  });
  afterEach(async () => {
    const list = await nb(['server', 'list', '-f', 'json']);
    for (const s of JSON.parse(list.stdout || '[]') as { ID: string }[])
      await nb(['server', 'delete', '--force', s.ID], { timeoutMs: 60_000 });
    expect(elements()).toEqual([]);
    const after = census(root);
    const sameBut = (c: Census) => ({ ...c, stateFiles: c.stateFiles.filter((f) => !f.startsWith('servers/')), nftTables: [] });
    expect(sameBut(after)).toEqual(sameBut(before));
    expect(after.veths).toEqual([]);
    expect(after.leases).toEqual([]);
  }, 120_000);

  it('reaches the server from the host on 127.0.0.1 and the bridge address, and from itself; an address-bound port only there', async () => {
    const [any, lo] = [await freePort(), await freePort()];
    const s = await create('web', ['--publish', `${any}:80`, '-p', `127.0.0.1:${lo}:80/tcp`]);
    expect(s.ports).toEqual([`0.0.0.0:${any}->80/tcp`, `127.0.0.1:${lo}->80/tcp`]);
    await serve('web');
    expect(await getSoon(`http://127.0.0.1:${any}/`)).toBe('hello-web\n');
    expect(await get(`http://${gateway}:${any}/`)).toBe('hello-web\n');
    expect(await get(`http://127.0.0.1:${lo}/`)).toBe('hello-web\n');
    expect(await get(`http://${gateway}:${lo}/`)).toBeUndefined();
    // hairpin: the server through the host's address to its own published port
    const h = await nb(['server', 'exec', 'web', '--', 'timeout', '30', 'wget', '-q', '-O', '-', `http://${gateway}:${any}/`]);
    expect(h.stdout, h.stderr).toBe('hello-web\n');
    // another server through the host's address
    await create('client', []);
    const c = await nb(['server', 'exec', 'client', '--', 'timeout', '30', 'wget', '-q', '-O', '-', `http://${gateway}:${any}/`]);
    expect(c.stdout, c.stderr).toBe('hello-web\n');
    // server show keeps them
    const show = await nb(['server', 'show', 'web', '-f', 'json']);
    expect(JSON.parse(show.stdout).ports).toEqual(s.ports);
    expect(elements()).toHaveLength(2);
  });

  it('rules follow the server: gone on stop, back on start, gone on a crash and on delete; the port is free again after delete', async () => {
    const port = await freePort();
    await create('p1', ['-p', `${port}:80`]);
    expect(elements()).toHaveLength(1);
    expect((await nb(['server', 'stop', 'p1'])).exitCode).toBe(0);
    expect(elements()).toEqual([]);
    expect(await get(`http://127.0.0.1:${port}/`)).toBeUndefined();
    expect((await nb(['server', 'start', 'p1'])).exitCode).toBe(0);
    expect(elements()).toHaveLength(1);
    await serve('p1');
    expect(await getSoon(`http://127.0.0.1:${port}/`)).toBe('hello-p1\n');

    // a crash: the init killed; the next command that looks reconciles it and removes the rules
    const pid = Number((await nb(['server', 'show', 'p1', '-f', 'value', '-c', 'pid'])).stdout.trim());
    process.kill(pid, 'SIGKILL');
    const end = Date.now() + 5000;
    while (existsSync(`/proc/${pid}`) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const list = await nb(['server', 'list', '-f', 'value', '-c', 'Status']);
    expect(list.stdout.trim()).toBe('SHUTOFF');
    expect(elements()).toEqual([]);

    expect((await nb(['server', 'start', 'p1'])).exitCode).toBe(0);
    expect(elements()).toHaveLength(1);
    expect((await nb(['server', 'delete', 'p1'])).exitCode).toBe(0);
    expect(elements()).toEqual([]);
    const again = await create('p2', ['-p', `${port}:80`]);
    expect(again.ports).toEqual([`0.0.0.0:${port}->80/tcp`]);
  });

  it('a taken port is refused in one sentence and nothing changes: by another server (running or not), by a process of the host', async () => {
    const port = await freePort();
    await create('holder', ['-p', `${port}:80`]);
    expect((await nb(['server', 'stop', 'holder'])).exitCode).toBe(0);
    const rows = (await nb(['server', 'list', '-f', 'value', '-c', 'Name'])).stdout;
    for (const spec of [`${port}:81`, `127.0.0.1:${port}:80`]) {
      const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '-p', spec, 'taker']);
      expect(r.exitCode).toBe(4);
      expect(r.stderr).toBe(`novabox: host port ${port}/tcp is already published by server "holder" (0.0.0.0:${port}->80/tcp)\n`);
    }
    expect((await nb(['server', 'list', '-f', 'value', '-c', 'Name'])).stdout).toBe(rows);
    // udp is another port
    await create('udp', ['-p', `${port}:53/udp`]);

    const hostPort = await freePort();
    const srv: NetServer = createServer();
    await new Promise<void>((r) => srv.listen(hostPort, '127.0.0.1', r));
    try {
      const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '-p', `${hostPort}:80`, 'taker']);
      expect(r.exitCode).toBe(4);
      expect(r.stderr).toBe(`novabox: host port ${hostPort}/tcp is taken: a process of the host listens on 127.0.0.1:${hostPort}\n`);
    } finally {
      await new Promise((r) => srv.close(r));
    }
    const listed = (await nb(['server', 'list', '-f', 'value', '-c', 'Name'])).stdout.trim().split('\n').sort();
    expect(listed).toEqual(['holder', 'udp']);
  });

  it.each([
    [['-p', '8080'], 2, 'invalid --publish "8080": expected [HOSTIP:]HOSTPORT:PORT[/tcp|udp]'],
    [['-p', '8080:80/sctp'], 2, 'invalid --publish "8080:80/sctp": protocol must be tcp or udp'],
    [['-p', '192.0.2.7:8080:80'], 2, 'cannot publish on 192.0.2.7: it is not an address of this host'],
    [['-p', '8080:80', '--network', 'none'], 2, '--publish needs the bridge network "novabox", not --network none'],
    [['-p', '8080:80', '--max', '2'], 2, 'a port can be published by one server only, not with --min/--max'],
    [['-p', '8080:80', '-p', '8080:81'], 2, 'host port 8080/tcp is published twice'],
  ])('bad input %j: one sentence, exit %i, nothing made', async (args, code, message) => {
    const r = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', ...args, 'bad']);
    expect(r.stderr).toBe(`novabox: ${message}\n`);
    expect(r.exitCode).toBe(code);
    expect((await nb(['server', 'list', '-f', 'value', '-c', 'Name'])).stdout).toBe('');
  });

  it('run -p: published while the container runs, gone at its end; a server holding the port refuses it', async () => {
    const port = await freePort();
    const r = runCli(
      [
        'run',
        '--rm',
        '-p',
        `${port}:80`,
        'busybox',
        'sh',
        '-c',
        // it runs until the test asks for /cgi-bin/stop (at most 60 s): no window that a slow
        // host (the guest's emulated CPUs) can outlast before the refusal is checked
        'mkdir -p /www/cgi-bin && echo hello-run > /www/index.html && ' +
          "echo '#!/bin/sh' > /www/cgi-bin/stop && echo 'printf \"Content-Type: text/plain\\r\\n\\r\\nbye\\n\"; touch /tmp/stop' >> /www/cgi-bin/stop && " +
          'chmod +x /www/cgi-bin/stop && httpd -p 80 -h /www && ' +
          'i=0; while [ ! -e /tmp/stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
      ],
      { root },
    );
    expect(await getSoon(`http://127.0.0.1:${port}/`)).toBe('hello-run\n');
    expect(elements()).toHaveLength(1);
    const ps = await nb(['ps', '-f', 'json']);
    expect((JSON.parse(ps.stdout) as { ports?: string[] }[]).map((c) => c.ports)).toEqual([[`0.0.0.0:${port}->80/tcp`]]);
    expect((await nb(['ps'])).stdout).toContain(`0.0.0.0:${port}->80/tcp`);
    const taken = await nb(['server', 'create', '--image', 'busybox', '--flavor', 'c1.nano', '-p', `${port}:80`, 'taker']);
    expect(taken.exitCode).toBe(4);
    expect(taken.stderr).toMatch(
      new RegExp(
        `^novabox: host port ${port}/tcp is already published by run container [0-9a-f]{12} \\(0\\.0\\.0\\.0:${port}->80/tcp\\)\n$`,
      ),
    );
    expect(await get(`http://127.0.0.1:${port}/cgi-bin/stop`)).toBe('bye\n');
    const done = await r;
    expect(done.stderr).toBe('');
    expect(done.exitCode).toBe(0);
    expect(elements()).toEqual([]);
    expect(await get(`http://127.0.0.1:${port}/`)).toBeUndefined();

    await create('holder', ['-p', `${port}:80`]);
    const refused = await runCli(['run', '--rm', '-p', `${port}:80`, 'busybox', 'true'], { root });
    expect(refused.stderr).toBe(`novabox: host port ${port}/tcp is already published by server "holder" (0.0.0.0:${port}->80/tcp)\n`);
    expect(refused.exitCode).not.toBe(0);
    const none = await runCli(['run', '--rm', '--network', 'none', '-p', `${port}:80`, 'busybox', 'true'], { root });
    expect(none.stderr).toBe('novabox: --publish needs the bridge network "novabox", not --network none\n');
    expect(none.exitCode).toBe(2);
  });

  it('doctor removes a rule no running server holds, and keeps the rules of running servers', async () => {
    const port = await freePort();
    await create('kept', ['-p', `${port}:80`]);
    const orphan = await freePort();
    const add = spawnSync('nft', [
      'add',
      'element',
      'ip',
      table(),
      'udp_any',
      `{ ${orphan} : ${subnet.replace(/\.0\/24$/, '.250')} . 53 }`,
    ]);
    expect(add.status).toBe(0);
    expect(elements()).toHaveLength(2);
    const dry = await nb(['doctor', '--dry-run', '-f', 'json']);
    expect(JSON.parse(dry.stdout)).toEqual([
      {
        Kind: 'port',
        Name: `0.0.0.0:${orphan}/udp`,
        Problem: `published-port rule to ${subnet.replace(/\.0\/24$/, '.250')}:53, which no running server or container holds`,
        Fixed: false,
      },
    ]);
    expect(elements()).toHaveLength(2);
    const fix = await nb(['doctor', '-f', 'json']);
    expect(JSON.parse(fix.stdout)).toHaveLength(1);
    expect(JSON.parse(fix.stdout)[0].Fixed).toBe(true);
    expect(elements()).toEqual([`tcp_any [${port},{"concat":["${subnet.replace(/\.0\/24$/, '.2')}",80]}]`]);
    expect((await nb(['doctor'])).stdout).toBe('nothing to fix\n');
  });
});
