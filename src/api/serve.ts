/**
 * `novabox serve`: the long-lived process of the API, on the same state store and the
 * same compute service as the CLI. First start bootstraps identity and writes
 * clouds.yaml; every start reconciles what a previous serve left half done.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BadRequest, NovaboxError } from '../errors.js';
import { ComputeService, reapMonitorsOnExit } from '../compute/servers.js';
import { IdentityService } from '../identity/service.js';
import { openStore } from '../compute/open.js';
import { stateRoot } from '../util/paths.js';
import { background } from './compute/routes.js';
import { ImageService } from '../images/service.js';
import { snapshotServer } from '../compute/snapshot.js';
import { buildApp, type ApiDeps } from './server.js';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { inlineRunner, WORKER_TAG, workerMain, workerRunner, type BlockingRunner } from './compute/blocking.js';

// This bundle is also the stop/delete worker's code (compute/blocking.ts).
if (!isMainThread && (workerData as { tag?: string } | null)?.tag === WORKER_TAG && parentPort) void workerMain(parentPort);

export interface ServeOptions {
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  accessLog: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
}

export interface Listen {
  host: string;
  port: number;
}

/** HOST:PORT, [IPv6]:PORT, or :PORT (loopback). */
export function parseListen(v: string): Listen {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new BadRequest(`invalid --listen ${JSON.stringify(v)}: expected HOST:PORT, e.g. 127.0.0.1:5000`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** clouds.yaml for cloud "novabox"; 0600, it may hold the admin password. */
export function cloudsYaml(authUrl: string, password: string, cacert?: string): string {
  const q = (s: string) => JSON.stringify(s);
  return [
    '# written by `novabox serve`: export OS_CLIENT_CONFIG_FILE=<this file> OS_CLOUD=novabox',
    'clouds:',
    '  novabox:',
    '    auth:',
    `      auth_url: ${q(authUrl)}`,
    '      username: "admin"',
    `      password: ${q(password)}`,
    '      project_name: "admin"',
    '      user_domain_name: "Default"',
    '      project_domain_name: "Default"',
    '    region_name: "RegionOne"',
    '    interface: "public"',
    '    identity_api_version: 3',
    ...(cacert ? [`    cacert: ${q(cacert)}`] : []),
    '',
  ].join('\n');
}

/**
 * clouds.yaml brought to how this serve listens: its auth_url, and its cacert with TLS (none
 * without). The rest (the password, lines a user added) stays: the password is nowhere else.
 */
export function updateCloudsYaml(text: string, authUrl: string, cacert?: string): string {
  let out = text.replace(/^(\s*auth_url:\s*).*$/m, `$1${JSON.stringify(authUrl)}`);
  const line = /^(\s*)cacert:.*$/m;
  if (!cacert) return out.replace(/^\s*cacert:.*\n?/m, '');
  if (line.test(out)) return out.replace(line, `$1cacert: ${JSON.stringify(cacert)}`);
  // after the cloud's last key (its keys are indented 4 spaces, as cloudsYaml writes them)
  const keys = [...out.matchAll(/^ {4}\S.*$/gm)];
  const last = keys.at(-1);
  if (!last) return out;
  const at = last.index! + last[0].length;
  out = `${out.slice(0, at)}\n    cacert: ${JSON.stringify(cacert)}${out.slice(at)}`;
  return out;
}

function writePrivate(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

export async function serve(o: ServeOptions): Promise<number> {
  const listen = parseListen(o.listen);
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new BadRequest('--tls-cert and --tls-key go together');
  const readPem = (file: string, flag: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new BadRequest(`cannot read ${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const https = o.tlsCert && o.tlsKey ? { cert: readPem(o.tlsCert, '--tls-cert'), key: readPem(o.tlsKey, '--tls-key') } : undefined;
  if (!isLoopback(listen.host) && !https) {
    o.err(
      `novabox: warning: listening on ${listen.host} without TLS: passwords and tokens cross the network in clear text (use --tls-cert/--tls-key)\n`,
    );
  }

  const store = openStore();
  // the monitors of the servers this process starts are its children: wait for them
  const stopReaping = reapMonitorsOnExit();
  const compute = new ComputeService(store);
  const identity = new IdentityService(store);
  const boot = await identity.bootstrap(process.env.NOVABOX_ADMIN_PASSWORD);
  const clouds = join(stateRoot(), 'clouds.yaml');
  const scheme = https ? 'https' : 'http';
  // Written at once: a new password exists nowhere else. The port is fixed up after listen.
  if (boot.password !== undefined) {
    writePrivate(
      clouds,
      cloudsYaml(
        `${scheme}://${urlHost(listen.host)}:${listen.port}/identity/v3`,
        boot.password,
        https && o.tlsCert ? resolve(o.tlsCert) : undefined,
      ),
    );
  }
  // The built-in image, so that `openstack image list` and `server create --image busybox` find it.
  const images = new ImageService(store);
  try {
    images.ensureBuiltin();
  } catch (err) {
    o.err(`novabox: warning: the built-in busybox image is not available: ${(err as Error).message}\n`);
  }
  // A server left in BUILD (or mid-action) by a serve that died is finished or failed now.
  const local = compute.localCaller();
  const reconciled = compute.list({}, local);

  // Bundled: stop/delete on a worker thread; from sources (tests): inline.
  const self = fileURLToPath(import.meta.url);
  let blocking: BlockingRunner = inlineRunner(compute);
  if (self.endsWith('.cjs')) {
    try {
      blocking = workerRunner(self);
    } catch (err) {
      o.err(`novabox: warning: no worker thread for stop/delete (${(err as Error).message}): they will block the server while they run\n`);
    }
  }
  const deps: ApiDeps = {
    store,
    compute,
    identity,
    blocking,
    images,
    snapshot: (req, caller) => snapshotServer(compute, images, req, caller),
    log: o.accessLog ? (line) => o.out(`${line}\n`) : undefined,
  };
  const app = await buildApp(deps, { https });
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    stopReaping();
    store.close();
    throw new NovaboxError('sys', `cannot listen on ${o.listen}: ${(err as Error).message}`);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : listen.port;
  const base = `${scheme}://${urlHost(listen.host)}:${port}`;
  const authUrl = `${base}/identity/v3`;
  if (existsSync(clouds)) {
    // a restart may change the port, or add or drop TLS: the client must follow
    const text = readFileSync(clouds, 'utf8');
    const updated = updateCloudsYaml(text, authUrl, https && o.tlsCert ? resolve(o.tlsCert) : undefined);
    if (updated !== text || (statSync(clouds).mode & 0o077) !== 0) writePrivate(clouds, updated);
  } else {
    o.err(
      `novabox: ${clouds} is missing and the admin password is not stored in clear: start once with NOVABOX_ADMIN_PASSWORD=... to set a new one and rewrite it\n`,
    );
  }

  o.out(
    `novabox serve: listening on ${base} (identity ${authUrl}, compute ${base}/compute/v2.1, image ${base}/image)\n` +
      (boot.created ? `novabox serve: first start: created user "admin" in project "admin" (roles admin, member, reader)\n` : '') +
      `novabox serve: ${reconciled.length} server(s) in the store\n` +
      `novabox serve: use it with:\n  export OS_CLIENT_CONFIG_FILE=${clouds} OS_CLOUD=novabox\n  openstack server list\n`,
  );

  await new Promise<void>((done) => {
    const stop = (sig: string) => {
      o.out(`novabox serve: ${sig}: stopping (letting ${background.size} background task(s) finish)\n`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      void app
        .close()
        .then(() => Promise.allSettled([...background]))
        .then(() => blocking.close())
        .finally(done);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  stopReaping();
  store.close();
  return 0;
}
