/**
 * A server's instance data as a NoCloud seed, as LXD gives it: `meta-data` (instance-id,
 * local-hostname, public-keys), `user-data` (Nova's user_data, verbatim), `vendor-data`
 * and `network-config`, in the server's state directory, bound read-only at
 * /var/lib/cloud/seed/nocloud in every server (cloud-init's NoCloud datasource reads that
 * directory without any kernel command line or filesystem label). With config_drive the
 * same facts are also laid out as a config drive's `openstack/latest/` (meta_data.json,
 * user_data), for tools that read that layout; cloud-init's ConfigDrive datasource looks
 * for a filesystem labelled config-2, which a directory is not, so NoCloud is what it uses.
 *
 * An image without cloud-init gets key_name's public key from novabox itself: appended to
 * root's authorized_keys in the writable layer before the server's first boot.
 */
import { chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRequest, NotFound } from '../errors.js';
import { USER_DATA_MAX } from '../model/records.js';
import type { Idmap } from '../runtime/plan/spec.js';
import { copyFiles } from '../runtime/server-files.js';
import { resolveUser } from '../runtime/user.js';
import { rmTree } from '../util/rmtree.js';

/** Where cloud-init's NoCloud datasource looks for a seed without a label or a command line. */
export const SEED_TARGET = '/var/lib/cloud/seed/nocloud';

export { USER_DATA_MAX };

export interface InstanceNetwork {
  /** dotted quad */
  address: string;
  prefixLen: number;
  gateway: string;
  mac: string;
  mtu?: number;
  nameservers: string[];
  search: string[];
}

export interface InstanceData {
  id: string;
  name: string;
  hostname: string;
  /** the server's metadata (Nova's `meta` in meta_data.json) */
  metadata: Record<string, string>;
  keyName: string | null;
  publicKey: string | null;
  /** user_data decoded; undefined: none given */
  userData?: Buffer;
  /** the bridge network's configuration; undefined: --network none or host (cloud-init must not touch it) */
  network?: InstanceNetwork;
  configDrive: boolean;
}

/**
 * Nova's user_data: base64 of at most 65535 characters, decoded. The message is Nova's
 * words for the same refusal (a jsonschema error on user_data).
 */
export function decodeUserData(b64: unknown): Buffer | undefined {
  if (b64 === undefined || b64 === null) return undefined;
  if (typeof b64 !== 'string')
    throw new BadRequest(`Invalid input for field/attribute user_data. Value: ${String(b64)}. is not of type 'string'`);
  if (b64.length > USER_DATA_MAX)
    throw new BadRequest(
      `Invalid input for field/attribute user_data. Value: ${b64.slice(0, 32)}... is too long (at most ${USER_DATA_MAX} characters of base64)`,
    );
  const compact = b64.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact))
    throw new BadRequest('Invalid input for field/attribute user_data. Value: ... is not a base64 string');
  return Buffer.from(compact, 'base64');
}

/** A YAML scalar: JSON's double-quoted string is YAML's too. */
const q = (s: string): string => JSON.stringify(s);

export function renderMetaData(d: InstanceData): string {
  const lines = [`instance-id: ${q(d.id)}`, `local-hostname: ${q(d.hostname)}`];
  if (d.publicKey) lines.push('public-keys:', `  - ${q(d.publicKey)}`);
  const meta = Object.entries(d.metadata);
  if (meta.length) {
    lines.push('meta:');
    for (const [k, v] of meta) lines.push(`  ${q(k)}: ${q(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

export const EMPTY_CLOUD_CONFIG = '#cloud-config\n{}\n';

/**
 * The provider's defaults, below the user's user-data: root logs in with key_name's key
 * (`ssh root@ADDRESS`, as on an image without cloud-init), where Debian's cloud.cfg has
 * `disable_root: true` (a "log in as debian" stub in root's authorized_keys); and the
 * locale is C.UTF-8, which glibc always has, where Debian's cloud.cfg asks for
 * en_US.UTF-8: a minimal image has no `locales` to make it, cloud-init's locale module then
 * fails and systemd says `degraded` (user-data's `locale:` still chooses).
 */
export const VENDOR_DATA = '#cloud-config\ndisable_root: false\nlocale: C.UTF-8\n';

/**
 * Network config v1: eth0 as novabox made it (the address, the gateway, the name servers of
 * the server's resolv.conf). `control: manual`, for lo too: ifupdown (cloud-init's eni
 * renderer on Debian) then brings nothing up at `ifup -a` (no `auto` line), so cloud-init
 * applying it never re-adds what novabox configured, nor needs CAP_NET_ADMIN, which a
 * server does not have (the renderer's default `auto lo` fails `ifup -a` with EPERM, and
 * with it the networking unit); networkd and netplan renderers apply the same address,
 * gateway and DNS.
 * Without a bridge address: `config: disabled` (with --network host cloud-init would
 * otherwise configure the host's own interfaces).
 */
export function renderNetworkConfig(n: InstanceNetwork | undefined): string {
  if (!n) return 'config: disabled\n';
  const lines = [
    'version: 1',
    'config:',
    '  - type: physical',
    '    name: lo',
    '    subnets:',
    '      - type: loopback',
    '        control: manual',
    '  - type: physical',
    '    name: eth0',
    `    mac_address: ${q(n.mac)}`,
    ...(n.mtu ? [`    mtu: ${n.mtu}`] : []),
    '    subnets:',
    '      - type: static',
    `        address: ${q(`${n.address}/${n.prefixLen}`)}`,
    `        gateway: ${q(n.gateway)}`,
    '        control: manual',
  ];
  if (n.nameservers.length) lines.push('        dns_nameservers:', ...n.nameservers.map((s) => `          - ${q(s)}`));
  if (n.search.length) lines.push('        dns_search:', ...n.search.map((s) => `          - ${q(s)}`));
  return `${lines.join('\n')}\n`;
}

/** Nova's config drive meta_data.json (openstack/latest), the fields a container has. */
export function renderMetaDataJson(d: InstanceData): string {
  return `${JSON.stringify({
    uuid: d.id,
    name: d.name,
    hostname: d.hostname,
    launch_index: 0,
    availability_zone: 'nova',
    meta: d.metadata,
    ...(d.publicKey && d.keyName
      ? { public_keys: { [d.keyName]: d.publicKey }, keys: [{ name: d.keyName, type: 'ssh', data: d.publicKey }] }
      : {}),
  })}\n`;
}

/** The seed's files, name → content and mode (user data may hold secrets: root only). */
export function renderSeed(d: InstanceData): { path: string; data: string | Buffer; mode: number }[] {
  const files: { path: string; data: string | Buffer; mode: number }[] = [
    { path: 'meta-data', data: renderMetaData(d), mode: 0o644 },
    { path: 'user-data', data: d.userData ?? EMPTY_CLOUD_CONFIG, mode: 0o600 },
    { path: 'vendor-data', data: VENDOR_DATA, mode: 0o644 },
    { path: 'network-config', data: renderNetworkConfig(d.network), mode: 0o644 },
  ];
  if (d.configDrive) {
    files.push({ path: 'openstack/latest/meta_data.json', data: renderMetaDataJson(d), mode: 0o644 });
    if (d.userData) files.push({ path: 'openstack/latest/user_data', data: d.userData, mode: 0o600 });
  }
  return files;
}

/** name servers and search domains of a resolv.conf */
export function parseResolv(text: string): { nameservers: string[]; search: string[] } {
  const nameservers: string[] = [];
  const search: string[] = [];
  for (const line of text.split('\n')) {
    const [k, ...v] = line.trim().split(/\s+/);
    if (k === 'nameserver' && v[0]) nameservers.push(v[0]);
    else if ((k === 'search' || k === 'domain') && v.length) search.push(...v.filter((x) => !search.includes(x)));
  }
  return { nameservers, search };
}

/**
 * Write the seed under `dir` (at each start: a rename or new metadata shows at the next
 * boot; instance-id stays, so cloud-init's per-instance modules do not run again). A file
 * whose content is unchanged is left alone, so a start usually only reads. Plain writes,
 * no rename: nothing reads the seed while the server is down. Owned by the server's root
 * when it has an id range.
 */
export function writeSeed(dir: string, d: InstanceData, idmap: Idmap | undefined): void {
  const own = (p: string) => idmap && chownSync(p, idmap.uidBase, idmap.gidBase);
  if (mkdirSync(dir, { recursive: true, mode: 0o755 }) !== undefined) own(dir);
  const files = renderSeed(d);
  if (!d.configDrive) rmTree(join(dir, 'openstack'));
  else
    for (const sub of ['openstack', 'openstack/latest']) {
      if (mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 }) !== undefined) own(join(dir, sub));
    }
  for (const f of files) {
    const p = join(dir, f.path);
    let old: Buffer | undefined;
    try {
      old = readFileSync(p);
    } catch {
      /* a new file */
    }
    if (old?.equals(Buffer.from(f.data))) continue;
    // a new inode, not a truncated one: ext4 flushes a file rewritten in place at close (auto_da_alloc)
    if (old) unlinkSync(p);
    writeFileSync(p, f.data, { mode: f.mode, flag: 'wx' });
    own(p);
  }
}

/** Whether the image ships cloud-init (/usr/bin/cloud-init in its layers, top first, whiteouts respected). */
export function hasCloudInit(layerDirs: string[]): boolean {
  for (const layer of layerDirs) {
    try {
      // undefined, not an exception, where it is not (every start of an image without it:
      // a process's first exception costs ~0.2 ms more than a stat)
      const st = lstatSync(join(layer, 'usr/bin/cloud-init'), { throwIfNoEntry: false });
      if (st) return !(st.isCharacterDevice() && st.rdev === 0);
    } catch {
      /* not in this layer */
    }
  }
  return false;
}

/**
 * key_name's public key appended to root's ~/.ssh/authorized_keys (dir 0700, file 0600,
 * owned by the server's root) in a stopped server's writable layer, copied in as
 * `server cp` does (parents copied up, nothing followed out of the root). Existing keys kept.
 */
export function injectKey(tree: { upper: string; lowers: string[]; idmap?: Idmap }, publicKey: string, stagingDir: string): void {
  let home = '/root';
  try {
    home = resolveUser('root', tree.lowers).home || '/root';
  } catch {
    /* an image without /etc/passwd: /root */
  }
  const stage = mkdtempSync(join(stagingDir, 'key-'));
  try {
    // stage/home/.ssh/authorized_keys, copied as the contents of stage/home: a missing
    // home is made (0700, root's), an existing one keeps its mode and owner
    const ssh = join(stage, 'home', '.ssh');
    mkdirSync(ssh, { recursive: true, mode: 0o700 });
    const skipped = () => {};
    let existing = '';
    try {
      copyFiles(tree, { server: true, path: `${home}/.ssh/authorized_keys` }, { server: false, path: join(stage, 'old') }, skipped);
      existing = readFileSync(join(stage, 'old'), 'utf8');
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
    }
    const lines = existing.split('\n').filter((l) => l.trim() !== '');
    if (!lines.includes(publicKey.trim())) lines.push(publicKey.trim());
    writeFileSync(join(ssh, 'authorized_keys'), `${lines.join('\n')}\n`, { mode: 0o600 });
    copyFiles(tree, { server: false, path: `${join(stage, 'home')}/.` }, { server: true, path: home }, skipped);
  } finally {
    rmTree(stage);
  }
}
