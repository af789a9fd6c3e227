/**
 * scripts/launcher.mjs: bin/novabox written at build time from bin/launcher.cjs with the
 * building node's absolute path as its #! line, and the cases that keep /usr/bin/env.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shebangFor, writeLauncher } from '../../../scripts/launcher.mjs';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('the generated launcher', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nbx-launcher-gen-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names the node that ran the build, or /usr/bin/env where a path cannot serve', () => {
    expect(shebangFor('/usr/bin/node', {})).toBe('#!/usr/bin/node');
    expect(shebangFor('/opt/node-v20/bin/node', { npm_command: 'ci' })).toBe('#!/opt/node-v20/bin/node');
    // a package built for other machines
    expect(shebangFor('/usr/bin/node', { npm_command: 'pack' })).toBe('#!/usr/bin/env node');
    expect(shebangFor('/usr/bin/node', { npm_command: 'publish' })).toBe('#!/usr/bin/env node');
    // the kernel ends the interpreter at a blank; old kernels keep 127 bytes of the line
    expect(shebangFor('/home/me/My Tools/node', {})).toBe('#!/usr/bin/env node');
    expect(shebangFor(`/${'x'.repeat(130)}/node`, {})).toBe('#!/usr/bin/env node');
    expect(shebangFor('node', {})).toBe('#!/usr/bin/env node');
  });

  it('writes the template with the new first line, executable, and it runs', () => {
    const out = join(dir, 'novabox');
    writeLauncher(join(ROOT, 'bin/launcher.cjs'), out, `#!${process.execPath}`);
    const text = readFileSync(out, 'utf8');
    const template = readFileSync(join(ROOT, 'bin/launcher.cjs'), 'utf8');
    expect(text.split('\n')[0]).toBe(`#!${process.execPath}`);
    expect(text.slice(text.indexOf('\n'))).toBe(template.slice(template.indexOf('\n')));
    expect(statSync(out).mode & 0o777).toBe(0o755);
    // exec'ed directly, the kernel runs the #! line's node: a probe with the same line says which
    const probe = join(dir, 'probe');
    writeFileSync(probe, `${text.split('\n')[0]}\nconsole.log(process.execPath);\n`, { mode: 0o755 });
    const r = spawnSync(probe, { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(process.execPath);
  });

  it('refuses a template without a #! line', () => {
    const t = join(dir, 'plain.cjs');
    writeFileSync(t, "'use strict';\n");
    expect(() => writeLauncher(t, join(dir, 'x'), '#!/usr/bin/node')).toThrow(/must start with a #! line/);
  });

  it("the build's bin/novabox is the template with this node's path", () => {
    const built = readFileSync(join(ROOT, 'bin/novabox'), 'utf8');
    const template = readFileSync(join(ROOT, 'bin/launcher.cjs'), 'utf8');
    expect(built.slice(built.indexOf('\n'))).toBe(template.slice(template.indexOf('\n')));
    expect(built.split('\n')[0]).toMatch(/^#!(\/usr\/bin\/env node|\/\S+)$/);
  });
});
