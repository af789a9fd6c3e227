/**
 * scripts/lazy-builtins.mjs: the stand-ins the bundles give src/ for Node built-ins loaded
 * on first use. node:stream's classes are extended at module top level (src/images), so a
 * subclass made before the real module loads must still get the real methods, static
 * functions must forward and instanceof must ask the real class.
 */
import { createRequire } from 'node:module';
import type * as Stream from 'node:stream';
import { transformSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { standInSource } from '../../../scripts/lazy-builtins.mjs';

// as scripts/build.mjs reads it: the CommonJS exports (an ES namespace has `default` too)
const realStream = createRequire(import.meta.url)('node:stream') as typeof Stream;

/** The stand-in for node:`path` as the bundle has it (CommonJS), and how often it loaded the real module. */
function standIn(path: string, real: object): { mod: typeof Stream & Record<string, (...a: unknown[]) => unknown>; loads: () => number } {
  const { code } = transformSync(standInSource(path, real), { format: 'cjs', loader: 'js' });
  let n = 0;
  const req = (id: string) => {
    expect(id).toBe(`node:${path}`);
    n++;
    return real;
  };
  const module = { exports: {} as typeof Stream & Record<string, (...a: unknown[]) => unknown> };
  new Function('module', 'exports', 'require', code)(module, module.exports, req);
  return { mod: module.exports, loads: () => n };
}

async function collect(r: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of r) s += String(c);
  return s;
}

describe('lazy built-in stand-ins', () => {
  it('node:stream: a subclass made before the load is a whole Transform; the module loads on first use', async () => {
    const { mod, loads } = standIn('stream', realStream);
    class Upper extends mod.Transform {
      override _transform(chunk: Buffer, _enc: BufferEncoding, cb: Stream.TransformCallback): void {
        cb(null, String(chunk).toUpperCase());
      }
    }
    expect(loads()).toBe(0);
    const t = new Upper();
    expect(loads()).toBe(1);
    expect(t).toBeInstanceOf(realStream.Transform);
    expect(t).toBeInstanceOf(mod.Transform);
    expect(t).toBeInstanceOf(Upper);
    expect(new realStream.PassThrough()).not.toBeInstanceOf(Upper);
    const src = mod.Readable.from(['ab', 'c']);
    expect(src).toBeInstanceOf(realStream.Readable);
    expect(src).toBeInstanceOf(mod.Readable);
    expect({}).not.toBeInstanceOf(mod.Readable);
    expect(await collect(src.pipe(t))).toBe('ABC');
    expect(loads()).toBe(1);
  });

  it('node:stream: instanceof and a static function load it too', () => {
    const a = standIn('stream', realStream);
    expect(new realStream.PassThrough() instanceof a.mod.Readable).toBe(true);
    expect(a.loads()).toBe(1);
    const b = standIn('stream', realStream);
    const d = b.mod.Duplex.from({ readable: realStream.Readable.from([]) });
    expect(b.loads()).toBe(1);
    expect(d).toBeInstanceOf(realStream.Duplex);
  });

  it('a module without classes: one forwarding function per function export', () => {
    const real = { twice: (x: number) => 2 * x, value: 3 };
    const { mod, loads } = standIn('fake', real);
    expect(Object.keys(mod)).toEqual(['twice']);
    expect(loads()).toBe(0);
    expect(mod.twice!(4)).toBe(8);
    expect(loads()).toBe(1);
  });
});
