/**
 * build/novabox.node (native-bindings/src/napi.c): the start path's calls as a Node-API
 * module. Checked here without root: what each call returns (a value or -errno), that
 * wrong arguments throw instead of reaching C, and that src/sys uses it.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isOpaqueDir } from '../../../src/sys/files.js';
import { layerIsOpaqueFast, nativeBuildDir, startPathFfi } from '../../../src/sys/native.js';

interface NovaboxNode {
  abi: () => number;
  spawn: (...a: unknown[]) => number;
  waitpid: (pid: number, options: number, status: Int32Array) => number;
  pidfdOpen: (pid: number) => number;
  pidfdSignal: (fd: number, sig: number) => number;
  ptyResize: (fd: number, rows: number, cols: number) => number;
  cgroupDevices: (dir: string, extra: string) => number;
  layerIsOpaque: (dir: string) => number;
  mapScript: (path: string) => string | number;
  mapFile: (path: string) => ArrayBuffer | number;
  netBridge: (name: string, addr: number, prefixLen: number, mtu: number, mac: Uint8Array) => number;
  netAttach: (...a: unknown[]) => number;
  netLinkDel: (name: string) => number;
}

function load(): NovaboxNode {
  const mod = { exports: {} as NovaboxNode };
  process.dlopen(mod, join(nativeBuildDir(), 'novabox.node'));
  return mod.exports;
}

const E = constants.errno;

describe('novabox.node', () => {
  const n = load();

  it('speaks the ABI of the header, and src/sys takes it for the start path', () => {
    expect(n.abi()).toBe(12);
    expect(startPathFfi()).toBe(process.env.NOVABOX_FFI === 'koffi' ? 'koffi' : 'node-api');
  });

  it("has the bridge network's calls (net.c), which check their arguments before C does anything", () => {
    const mac = Uint8Array.from([2, 0, 0, 0, 0, 1]);
    // a name too long for a link: refused by net.c before any netlink message
    expect(n.netBridge('x'.repeat(40), 0x0100000a, 24, 0, mac)).toBe(-E.EINVAL);
    expect(n.netLinkDel('x'.repeat(40))).toBe(-E.EINVAL);
    const stage = new Int32Array(1);
    expect(n.netAttach('br', 'x'.repeat(40), '', 1, 0x0200000a, 0x0100000a, 24, 0, mac, stage)).toBe(-E.EINVAL);
    expect(stage[0]).toBe(1); // NB_NET_STAGE_ARGS
    expect(() => n.netBridge('br', 1, 24, 0, Uint8Array.from([1, 2]))).toThrow(/6 bytes of a MAC address/);
    expect(() => n.netAttach('br', 'h')).toThrow(TypeError);
  });

  it('returns -errno from failed calls', () => {
    expect(n.waitpid(process.pid, 1, new Int32Array(1))).toBe(-E.ECHILD);
    expect(n.pidfdOpen(0x3fffffff)).toBe(-E.ESRCH);
    expect(n.ptyResize(0x7fff, 24, 80)).toBe(-E.EBADF);
    expect(n.ptyResize(0, 70000, 80)).toBe(-E.EINVAL);
  });

  it("maps bin/launcher.cjs's files: a bundle as a string, a code cache as bytes, -errno otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-map-'));
    try {
      const text = `(function (exports) {exports.x = ${JSON.stringify('a'.repeat(70_000))};})`;
      writeFileSync(join(dir, 'b.cjs'), text);
      expect(n.mapScript(join(dir, 'b.cjs'))).toBe(text);
      const bytes = Buffer.from([0, 1, 2, 0xff, 0x80, 7]);
      writeFileSync(join(dir, 'c.cache'), bytes);
      const ab = n.mapFile(join(dir, 'c.cache'));
      expect(ab).toBeInstanceOf(ArrayBuffer);
      expect(Buffer.from(ab as ArrayBuffer).equals(bytes)).toBe(true);
      writeFileSync(join(dir, 'empty'), '');
      expect(n.mapScript(join(dir, 'empty'))).toBe(-E.ENODATA);
      expect(n.mapFile(join(dir, 'nope'))).toBe(-E.ENOENT);
      expect(n.mapScript(dir)).toBe(-E.EINVAL);
      expect(() => n.mapScript(1 as unknown as string)).toThrow(TypeError);
      // the real thing: a bundle the launcher maps reads as the file's text
      const bundle = join(nativeBuildDir(), '..', '..', 'dist', 'verbs', 'server-list.cjs');
      expect(n.mapScript(bundle)).toBe(readFileSync(bundle, 'latin1'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens and signals a pidfd', () => {
    const fd = n.pidfdOpen(process.pid);
    expect(fd).toBeGreaterThan(2);
    try {
      expect(n.pidfdSignal(fd, 0)).toBe(0);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a malformed plan before starting anything (stage 1: check the plan)', () => {
    const out = new Int32Array(7);
    const rc = n.spawn(new Uint8Array(64), '/nonexistent/novabox-monitor', 'test', 0, 1, 2, 0, 0, out);
    expect(rc).toBe(-E.EINVAL);
    expect(out[0]).toBe(-1); // no monitor pid
    expect(out[5]).toBe(1); // NB_STAGE_PLAN
  });

  it('says whether an overlay layer dir is opaque (a create asks it without koffi), as libnovabox.so does', () => {
    const base = mkdtempSync(join(tmpdir(), 'nb-napi-opaque-'));
    try {
      const plain = join(base, 'plain');
      mkdirSync(plain);
      expect(n.layerIsOpaque(plain)).toBe(0);
      expect(n.layerIsOpaque(join(base, 'missing'))).toBe(-E.ENOENT);
      expect(layerIsOpaqueFast(plain)).toBe(process.env.NOVABOX_FFI === 'koffi' ? undefined : 0);
      expect(isOpaqueDir(plain)).toBe(false);
      if (process.getuid?.() === 0) {
        // trusted.* xattrs need CAP_SYS_ADMIN: as root, an opaque dir as overlayfs marks one
        const opaque = join(base, 'opaque');
        mkdirSync(opaque);
        execFileSync('python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")', opaque]);
        expect(n.layerIsOpaque(opaque)).toBe(1);
        expect(isOpaqueDir(opaque)).toBe(true);
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('throws a TypeError on wrong arguments instead of calling C', () => {
    expect(() => n.waitpid('1' as unknown as number, 0, new Int32Array(1))).toThrow(/expected a number/);
    expect(() => n.waitpid(1, 0, [] as unknown as Int32Array)).toThrow(/expected a typed array/);
    expect(() => n.spawn()).toThrow(/wrong number of arguments/);
    expect(() => n.spawn(new Uint8Array(64), 'm', 't', 0, 1, 2, 0, 0, new Int32Array(2))).toThrow(/Int32Array\(7\)/);
    expect(() => n.cgroupDevices('x'.repeat(5000), '')).toThrow(/PATH_MAX/);
    // the rules beyond the fixed list are read before anything is loaded: a bad one is -EINVAL
    for (const bad of ['x 1:2', 'c 1', 'c a:1', 'b 7:0 rwx', 'c -1:3', 'c 1:2rw'])
      expect(n.cgroupDevices('/nonexistent', bad), bad).toBe(-E.EINVAL);
  });
});
