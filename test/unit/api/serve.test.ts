import { describe, expect, it } from 'vitest';
import { cloudsYaml, isLoopback, parseListen, updateCloudsYaml } from '../../../src/api/serve.js';

describe('serve options', () => {
  it.each([
    ['127.0.0.1:5000', { host: '127.0.0.1', port: 5000 }],
    [':5001', { host: '127.0.0.1', port: 5001 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['[::1]:5000', { host: '::1', port: 5000 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('--listen %s', (v, want) => {
    expect(parseListen(v)).toEqual(want);
  });

  it.each(['5000', 'host', 'a:b', '1.2.3.4:70000', '::1:5000', ''])('refuses --listen %j', (v) => {
    expect(() => parseListen(v)).toThrow(/invalid --listen/);
  });

  it('knows loopback from the rest (the warning when serving elsewhere without TLS)', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].map(isLoopback)).toEqual([true, true, true, true]);
    expect(['0.0.0.0', '::', '10.0.0.1', 'example.org'].map(isLoopback)).toEqual([false, false, false, false]);
  });

  it('writes a clouds.yaml the client reads (quoted values, cacert only with TLS)', () => {
    const y = cloudsYaml('http://127.0.0.1:5000/identity/v3', 'p"w:#x');
    expect(y).toContain('  novabox:\n');
    expect(y).toContain('      password: "p\\"w:#x"\n');
    expect(y).toContain('      auth_url: "http://127.0.0.1:5000/identity/v3"\n');
    expect(y).not.toContain('cacert');
    expect(cloudsYaml('https://h/identity/v3', 'x', '/etc/c.pem')).toContain('    cacert: "/etc/c.pem"\n');
  });
});

describe('clouds.yaml on a restart', () => {
  const plain = cloudsYaml('http://127.0.0.1:5000/identity/v3', 'pw');
  const tls = cloudsYaml('https://127.0.0.1:5001/identity/v3', 'pw', '/etc/c.pem');

  it('follows a restart with TLS: the https URL and the cacert, the password kept', () => {
    expect(updateCloudsYaml(plain, 'https://127.0.0.1:5001/identity/v3', '/etc/c.pem')).toBe(tls);
  });

  it('follows a restart without TLS: the http URL, no cacert', () => {
    expect(updateCloudsYaml(tls, 'http://127.0.0.1:5000/identity/v3')).toBe(plain);
  });

  it('changes a moved certificate and a port, and leaves a current file as it is', () => {
    expect(updateCloudsYaml(tls, 'https://127.0.0.1:5001/identity/v3', '/new/c.pem')).toBe(tls.replace('/etc/c.pem', '/new/c.pem'));
    expect(updateCloudsYaml(tls, 'https://127.0.0.1:5001/identity/v3', '/etc/c.pem')).toBe(tls);
    expect(updateCloudsYaml(plain, 'http://127.0.0.1:6000/identity/v3')).toBe(plain.replace(':5000', ':6000'));
  });

  it('keeps lines a user added', () => {
    const edited = plain.replace('    identity_api_version: 3\n', '    identity_api_version: 3\n    verify: true\n');
    const out = updateCloudsYaml(edited, 'https://127.0.0.1:5001/identity/v3', '/etc/c.pem');
    expect(out).toContain('    verify: true\n    cacert: "/etc/c.pem"\n');
  });
});
