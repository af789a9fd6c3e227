import { describe, expect, it } from 'vitest';
import { BadRequest, NotFound, NovaboxError } from '../../../src/errors.js';
import {
  defaultImageName,
  formatPullReference,
  parsePullReference,
  pinnedReference,
  type PullReference,
} from '../../../src/images/reference.js';
import { explainSkopeoError } from '../../../src/images/skopeo.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parsePullReference', () => {
  it.each<[string, PullReference]>([
    ['docker://127.0.0.1:5000/app:1.0', { transport: 'docker', registry: '127.0.0.1:5000', repository: 'app', tag: '1.0' }],
    ['docker://127.0.0.1:5000/app', { transport: 'docker', registry: '127.0.0.1:5000', repository: 'app', tag: 'latest' }],
    [`docker://127.0.0.1:5000/team/app@${D}`, { transport: 'docker', registry: '127.0.0.1:5000', repository: 'team/app', digest: D }],
    ['docker://localhost/a/b/c:v_1.2-rc', { transport: 'docker', registry: 'localhost', repository: 'a/b/c', tag: 'v_1.2-rc' }],
    [
      'docker://registry.example.com/x__y.z-w',
      { transport: 'docker', registry: 'registry.example.com', repository: 'x__y.z-w', tag: 'latest' },
    ],
    ['docker://[::1]:5000/app:2', { transport: 'docker', registry: '[::1]:5000', repository: 'app', tag: '2' }],
    ['docker://busybox', { transport: 'docker', registry: 'docker.io', repository: 'library/busybox', tag: 'latest' }],
    ['docker://team/app:3', { transport: 'docker', registry: 'docker.io', repository: 'team/app', tag: '3' }],
    ['oci:/srv/layout', { transport: 'oci', path: '/srv/layout' }],
    ['oci:/srv/layout:app', { transport: 'oci', path: '/srv/layout', ref: 'app' }],
    ['oci-archive:bb.tar', { transport: 'oci-archive', path: 'bb.tar' }],
    ['docker-archive:/tmp/s.tar:app:1', { transport: 'docker-archive', path: '/tmp/s.tar', ref: 'app:1' }],
  ])('%s', (text, want) => {
    expect(parsePullReference(text)).toEqual(want);
  });

  it.each([
    ['busybox', /must start with a transport/],
    ['', /must start with a transport/],
    ['://x', /must start with a transport/],
    ['http://127.0.0.1/app', /unknown transport "http"/],
    ['containers-storage:app', /unknown transport "containers-storage"/],
    ['docker:127.0.0.1/app', /docker:\/\/HOST\/REPO/],
    ['docker://', /names no repository/],
    ['docker://127.0.0.1:5000/App', /lowercase/],
    ['docker://127.0.0.1:5000/a//b', /empty path component/],
    ['docker://127.0.0.1:5000/-a', /not a repository path component/],
    ['docker://127.0.0.1:5000/app:', /tag "" is not/],
    ['docker://127.0.0.1:5000/app:.x', /tag "\.x" is not/],
    [`docker://127.0.0.1:5000/app:${'t'.repeat(129)}`, /tag/],
    ['docker://127.0.0.1:5000/app@sha256:abc', /64 lowercase hex/],
    [`docker://127.0.0.1:5000/app@md5:${'a'.repeat(64)}`, /a digest is sha256/],
    [`docker://127.0.0.1:5000/app:1@${D}`, /a tag or a digest, not both/],
    ['docker://127.0.0.1:99999/app', /port 99999 is out of range/],
    ['docker://bad_host.com/app', /not a registry host/],
    [`docker://h.io/${'a'.repeat(260)}`, /over 255 characters/],
    ['oci:', /needs a path/],
  ])('refuses %s in one sentence', (text, why) => {
    const err = (() => {
      try {
        parsePullReference(text);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BadRequest);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe('reference helpers', () => {
  it('formats the reference with its tag explicit, and pins it to a digest', () => {
    const r = parsePullReference('docker://127.0.0.1:5000/team/app');
    expect(formatPullReference(r)).toBe('docker://127.0.0.1:5000/team/app:latest');
    expect(formatPullReference(pinnedReference(r, D))).toBe(`docker://127.0.0.1:5000/team/app@${D}`);
    const local = parsePullReference('oci-archive:/x/bb.tar:app');
    expect(formatPullReference(local)).toBe('oci-archive:/x/bb.tar:app');
    expect(pinnedReference(local, D)).toBe(local);
  });
  it.each([
    ['docker://127.0.0.1:5000/team/app:1.0', 'app:1.0'],
    ['docker://127.0.0.1:5000/app', 'app:latest'],
    [`docker://127.0.0.1:5000/app@${D}`, `app@${D}`],
    ['oci-archive:/x/busybox.tar', 'busybox'],
    ['oci-archive:/x/busybox.tar.gz', 'busybox'],
    ['oci:/x/layout/', 'layout'],
    ['oci:/x/layout:web', 'web'],
    ['docker-archive:/x/s.tar:app:1', 'app:1'],
  ])('names %s %s by default', (text, name) => {
    expect(defaultImageName(parsePullReference(text))).toBe(name);
  });
});

describe('explainSkopeoError', () => {
  const r = parsePullReference('docker://127.0.0.1:5000/app:1');
  const fatal = (msg: string) => `time="2026-12-07T01:40:02Z" level=fatal msg="${msg.replace(/"/g, '\\"')}"\n`;
  it.each<[string, RegExp, abstract new (...a: never[]) => NovaboxError, { withCreds?: boolean }?]>([
    [
      'Error parsing image name "docker://127.0.0.1:5000/app:1": pinging container registry 127.0.0.1:5000: Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused',
      /^cannot reach registry 127\.0\.0\.1:5000: connection refused$/,
      NovaboxError,
    ],
    [
      'Error parsing image name "docker://127.0.0.1:5000/app:1": reading manifest 1 in 127.0.0.1:5000/app: manifest unknown: manifest unknown',
      /^image docker:\/\/127\.0\.0\.1:5000\/app:1 not found in registry 127\.0\.0\.1:5000$/,
      NotFound,
    ],
    ['reading manifest 1 in 127.0.0.1:5000/app: name unknown: repository name not known to registry', /not found/, NotFound],
    [
      'Error parsing image name "docker://127.0.0.1:5000/app:1": reading manifest 1 in 127.0.0.1:5000/app: unauthorized: authentication required',
      /requires credentials .*--creds USER:PASSWORD/,
      BadRequest,
    ],
    [
      'reading manifest 1 in 127.0.0.1:5000/app: unauthorized: authentication required',
      /refused the credentials/,
      BadRequest,
      { withCreds: true },
    ],
    [
      'pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to HTTPS client',
      /speaks plain HTTP.*--tls-verify=false/,
      BadRequest,
    ],
    ['Get "https://127.0.0.1:5000/v2/": x509: certificate signed by unknown authority', /certificate .*--tls-verify=false/, BadRequest],
    ['something else entirely', /^skopeo could not read docker:\/\/127\.0\.0\.1:5000\/app:1: something else entirely$/, NovaboxError],
  ])('%s', (msg, want, type, how) => {
    const err = explainSkopeoError(fatal(msg), r, how);
    expect(err).toBeInstanceOf(type);
    expect(err.message).toMatch(want);
  });
  it('says when a file is missing, and when skopeo was killed', () => {
    const local = parsePullReference('oci-archive:/nope.tar');
    expect(explainSkopeoError(fatal('open /nope.tar: no such file or directory'), local).message).toBe(
      'no such file or directory: /nope.tar',
    );
    expect(explainSkopeoError('', r, { signal: 'SIGKILL' }).message).toMatch(/killed by SIGKILL/);
    const notOci = parsePullReference('oci-archive:d.tar');
    const err = explainSkopeoError(fatal('open /var/tmp/oci6307178/index.json: no such file or directory'), notOci);
    expect(err).toBeInstanceOf(BadRequest);
    expect(err.message).toBe('d.tar is not an OCI archive: it has no index.json');
    const notDocker = parsePullReference('docker-archive:o.tar');
    expect(explainSkopeoError(fatal('loading tar component manifest.json: file does not exist'), notDocker).message).toBe(
      'o.tar is not a docker archive: it has no manifest.json',
    );
    const notTar = parsePullReference('oci-archive:/etc/hostname');
    expect(
      explainSkopeoError(fatal('creating temp directory: untarring file "/var/tmp/oci1210730714": unexpected EOF'), notTar).message,
    ).toBe('/etc/hostname is not a tar archive');
  });
});
