/**
 * scripts/koffi-path.mjs: the koffi.node path scripts/build.mjs bakes into the bundles
 * (src/sys/native.ts then only dlopens it). Checked on this checkout's node_modules and
 * on small fake trees for the cases that must fall back to koffi's own loader.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { koffiNativePath } from '../../../scripts/koffi-path.mjs';

const ROOT = resolve(import.meta.dirname, '../../..');

describe('koffiNativePath (build time)', () => {
  const tree = mkdtempSync(join(tmpdir(), 'nbx-koffi-path-'));
  afterAll(() => rmSync(tree, { recursive: true, force: true }));
  const fake = (name: string, koffiVersion: string, pkgVersion: string | undefined, dirs: string[]) => {
    const root = join(tree, name);
    mkdirSync(join(root, 'node_modules/koffi'), { recursive: true });
    writeFileSync(join(root, 'node_modules/koffi/package.json'), JSON.stringify({ version: koffiVersion }));
    if (pkgVersion !== undefined) {
      const pkg = join(root, 'node_modules/@koromix/koffi-linux-x64');
      mkdirSync(pkg, { recursive: true });
      writeFileSync(join(pkg, 'package.json'), JSON.stringify({ version: pkgVersion }));
      for (const d of dirs) {
        mkdirSync(join(pkg, d), { recursive: true });
        writeFileSync(join(pkg, d, 'koffi.node'), '');
      }
    }
    return root;
  };
  const linux = { platform: 'linux', arch: 'x64', musl: false };

  it("finds this checkout's prebuilt module, relative to the project", () => {
    const rel = koffiNativePath(ROOT);
    expect(rel).toMatch(/^node_modules\/@koromix\/koffi-linux-[a-z0-9]+\/(linux|musl)_[a-z0-9]+\/koffi\.node$/);
    expect(existsSync(join(ROOT, rel!))).toBe(true);
  });

  it('takes the glibc build, or the musl one on musl', () => {
    const root = fake('both', '3.3.4', '3.3.4', ['linux_x64', 'musl_x64']);
    expect(koffiNativePath(root, linux)).toBe('node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node');
    expect(koffiNativePath(root, { ...linux, musl: true })).toBe('node_modules/@koromix/koffi-linux-x64/musl_x64/koffi.node');
  });

  it("leaves it to koffi's loader on a version mismatch, a missing package or file", () => {
    expect(koffiNativePath(fake('mismatch', '3.3.4', '3.3.3', ['linux_x64']), linux)).toBeNull();
    expect(koffiNativePath(fake('nopkg', '3.3.4', undefined, []), linux)).toBeNull();
    expect(koffiNativePath(fake('nofile', '3.3.4', '3.3.4', ['musl_x64']), linux)).toBeNull();
    expect(koffiNativePath(join(tree, 'nothing-here'), linux)).toBeNull();
  });
});
