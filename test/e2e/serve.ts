/** Start `novabox serve` on a free loopback port of a temp state root; run the real `openstack` client at it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cliEnv } from '../helpers/run-cli.js';

export interface Serve {
  url: string;
  proc: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startServe(root: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<Serve> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, [BIN, 'serve', '--listen', '127.0.0.1:0', ...extraArgs], {
      env: cliEnv(root, env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let url: string | undefined;
    const timer = setTimeout(() => fail(new Error(`serve did not start in 20 s:\n${out}`)), 20_000);
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on (https?:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m && !url) {
        url = m[1]!;
        clearTimeout(timer);
        done({
          url,
          proc,
          output: () => out,
          stop: async (signal = 'SIGTERM') => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code) => {
      if (!url) {
        clearTimeout(timer);
        fail(new Error(`serve exited with ${code}:\n${out}`));
      }
    });
  });
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** One client command: 1-3 s of Python start-up and the call, up to ~10 s on a busy host; a hang is killed. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 45_000): Promise<Run> {
  return new Promise((done, fail) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', fail);
    p.on('close', (code) => {
      clearTimeout(t);
      done({ code, stdout, stderr });
    });
  });
}

/** A clouds.yaml with the admin cloud "novabox" (serve's own) plus one cloud per extra user. */
export function cloudsFor(root: string, url: string, users: { cloud: string; user: string; password: string; project: string }[]): string {
  const file = join(root, 'clouds-e2e.yaml');
  const lines = ['clouds:'];
  for (const u of users) {
    lines.push(
      `  ${u.cloud}:`,
      '    auth:',
      `      auth_url: "${url}/identity/v3"`,
      `      username: "${u.user}"`,
      `      password: "${u.password}"`,
      `      project_name: "${u.project}"`,
      '      user_domain_name: "Default"',
      '      project_domain_name: "Default"',
      '    region_name: "RegionOne"',
      '    identity_api_version: 3',
    );
  }
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  return file;
}

export async function tokenFor(url: string, user: string, password: string, project?: string): Promise<string> {
  const r = await fetch(`${url}/identity/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: user, domain: { name: 'Default' }, password } } },
        ...(project ? { scope: { project: { name: project, domain: { name: 'Default' } } } } : {}),
      },
    }),
  });
  if (r.status !== 201) throw new Error(`token for ${user}: HTTP ${r.status} ${await r.text()}`);
  return r.headers.get('x-subject-token')!;
}
