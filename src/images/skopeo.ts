/**
 * skopeo(1) as a child process: `inspect --raw` to learn which manifest a reference names,
 * `copy` into an OCI image layout for the importer. Credentials never go on skopeo's
 * command line (any user may read /proc/<pid>/cmdline): --creds becomes an auth file
 * (containers-auth.json(5)) in the caller's staging dir, mode 0600.
 * skopeo's errors are one logrus line; `explainSkopeoError` turns the ones a user meets
 * (nothing listening, no such image, wrong credentials, TLS) into one sentence.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { NotFound, BadRequest, NovaboxError } from '../errors.js';
import { clip } from '../util/text.js';
import { formatPullReference, type PullReference } from './reference.js';

export interface RegistryAuth {
  /** USER:PASSWORD */
  creds?: string;
  /** an auth file of the user's (skopeo --authfile) */
  authfile?: string;
  /** false: plain HTTP or an unverified certificate (a local registry) */
  tlsVerify: boolean;
}

/** The `containers-auth.json` for --creds: the registry's entry only. */
export function writeAuthFile(file: string, registry: string, creds: string): void {
  const sep = creds.indexOf(':');
  if (sep <= 0) throw new BadRequest('invalid --creds: expected USER:PASSWORD');
  writeFileSync(file, JSON.stringify({ auths: { [registry]: { auth: Buffer.from(creds).toString('base64') } } }), { mode: 0o600 });
}

/** The options that apply to the source image of `inspect` (prefix '') and `copy` (prefix 'src-'). */
function authArgs(r: PullReference, auth: RegistryAuth, authFile: string | undefined, prefix: '' | 'src-'): string[] {
  const args: string[] = [];
  if (authFile) args.push(`--${prefix}authfile`, authFile);
  if (r.transport === 'docker' && !auth.tlsVerify) args.push(`--${prefix}tls-verify=false`);
  return args;
}

export interface SkopeoRun {
  signal?: AbortSignal;
  /** skopeo's progress goes to this fd (a terminal); otherwise it runs --quiet */
  progressFd?: number;
  /**
   * skopeo's temporary files (an archive unpacked, a blob being written) go here, inside
   * the caller's staging dir: a skopeo killed by an abort leaves nothing in /var/tmp
   */
  tmpDir?: string;
}

function skopeo(args: string[], what: PullReference, withCreds: boolean, opts: SkopeoRun): Promise<Buffer> {
  return new Promise((done, fail) => {
    const child = spawn('skopeo', args, {
      stdio: ['ignore', opts.progressFd ?? 'pipe', 'pipe'],
      signal: opts.signal,
      killSignal: 'SIGKILL',
      env: opts.tmpDir ? { ...process.env, TMPDIR: opts.tmpDir } : process.env,
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 65536) err += d.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.name === 'AbortError') fail(e);
      else if (e.code === 'ENOENT') fail(new NovaboxError('sys', 'skopeo is not installed: image pull runs it (apt-get install skopeo)'));
      else fail(e);
    });
    child.on('close', (code, signal) => {
      if (opts.signal?.aborted) return fail(opts.signal.reason);
      if (code === 0) return done(Buffer.concat(out));
      fail(explainSkopeoError(err, what, { withCreds, signal: signal ?? undefined }));
    });
  });
}

/** The manifest (or index) the reference names, as the registry stores it: its sha256 is the digest. */
export function inspectRaw(r: PullReference, auth: RegistryAuth, authFile: string | undefined, opts: SkopeoRun = {}): Promise<Buffer> {
  return skopeo(['inspect', '--raw', ...authArgs(r, auth, authFile, ''), formatPullReference(r)], r, authFile !== undefined, {
    signal: opts.signal,
    tmpDir: opts.tmpDir,
  });
}

/** Copy the image into an OCI layout at `dir`, named `refName` in its index (the host's platform of an index). */
export async function copyToLayout(
  r: PullReference,
  dir: string,
  refName: string,
  auth: RegistryAuth,
  authFile: string | undefined,
  opts: SkopeoRun = {},
): Promise<void> {
  const quiet = opts.progressFd === undefined ? ['--quiet'] : [];
  await skopeo(
    ['copy', ...quiet, ...authArgs(r, auth, authFile, 'src-'), formatPullReference(r), `oci:${dir}:${refName}`],
    r,
    authFile !== undefined,
    opts,
  );
}

/**
 * One sentence for skopeo's failure. Its message is `time=… level=fatal msg="…"`; the
 * causes are matched on the words of containers/image and distribution's error codes.
 */
export function explainSkopeoError(stderr: string, r: PullReference, how: { withCreds?: boolean; signal?: string } = {}): NovaboxError {
  const { signal } = how;
  const what = formatPullReference(r);
  const where = r.transport === 'docker' ? `registry ${r.registry}` : what;
  const msg = lastMessage(stderr);
  const has = (re: RegExp) => re.test(msg);
  if (signal) return new NovaboxError('sys', `skopeo was killed by ${signal} while reading ${what}`);
  if (has(/connection refused/)) return new NovaboxError('sys', `cannot reach ${where}: connection refused`);
  if (has(/no such host|server misbehaving/)) return new NovaboxError('sys', `cannot reach ${where}: the host name does not resolve`);
  if (has(/i\/o timeout|deadline exceeded|no route to host|network is unreachable/))
    return new NovaboxError('sys', `cannot reach ${where}: ${clip(msg.replace(/^.*: /, ''), 80)}`);
  if (has(/server gave HTTP response to HTTPS client/))
    return new BadRequest(`${where} speaks plain HTTP, not HTTPS: pass --tls-verify=false for a local registry`);
  if (has(/x509:|certificate/))
    return new BadRequest(`${where} has a certificate this host does not trust: pass --tls-verify=false for a local registry`);
  if (has(/unauthorized|authentication required|invalid username\/password/)) {
    return new BadRequest(
      how.withCreds
        ? `${where} refused the credentials for ${what}: check --creds or --authfile`
        : `${where} requires credentials for ${what}: pass --creds USER:PASSWORD or --authfile FILE`,
    );
  }
  if (has(/denied/)) return new BadRequest(`${where} denies access to ${what}`);
  if (r.transport !== 'docker' && has(/no such file or directory|file does not exist/)) {
    if (has(/index\.json/))
      return new BadRequest(`${r.path} is not an OCI ${r.transport === 'oci' ? 'layout' : 'archive'}: it has no index.json`);
    if (has(/manifest\.json/)) return new BadRequest(`${r.path} is not a docker archive: it has no manifest.json`);
    return new NotFound(`no such file or directory: ${r.path}`);
  }
  if (r.transport !== 'docker' && has(/untarring|invalid tar header|unexpected EOF/)) {
    return new BadRequest(`${r.path} is not a tar archive`);
  }
  if (has(/manifest unknown|name unknown|not found/)) return new NotFound(`image ${what} not found in ${where}`);
  if (has(/choosing an image from manifest list|no image found in (image index|manifest list) for architecture/))
    return new BadRequest(`${what} has no image for this host's platform`);
  return new NovaboxError('sys', `skopeo could not read ${what}: ${clip(msg || 'it failed without a message', 300)}`);
}

/** The message of skopeo's last log line, unquoted, without the "Error parsing image name" preamble. */
function lastMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const line = lines[lines.length - 1] ?? '';
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  const msg = m ? m[1].replace(/\\(.)/g, '$1') : line;
  return msg.replace(/^Error parsing image name "[^"]*": /, '');
}
