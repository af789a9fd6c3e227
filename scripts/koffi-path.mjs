// Where koffi's prebuilt native module for this machine is, decided once at build time
// (scripts/build.mjs bakes the answer into the bundles as NOVABOX_KOFFI_NODE): at run time
// src/sys/native.ts only opens that file, instead of reading and comparing two
// package.json files on every start (~0.45 ms). null: use koffi's own loader at run time.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** musl libc (Alpine): koffi's packages carry a musl build beside the glibc one. */
export function isMusl() {
  return existsSync('/lib/ld-musl-x86_64.so.1') || existsSync('/lib/ld-musl-aarch64.so.1');
}

/**
 * The path of koffi.node relative to `root` (the project), or null when koffi's own loader
 * must decide: the @koromix/koffi-<platform>-<arch> package (where koffi's loader looks
 * first) is missing, or of another version than koffi's JS (a mismatch must not be
 * loaded), or the file is not there.
 */
export function koffiNativePath(root, { platform = process.platform, arch = process.arch, musl = isMusl() } = {}) {
  const pkgDir = join('node_modules', '@koromix', `koffi-${platform}-${arch}`);
  const version = (dir) => {
    try {
      return JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')).version;
    } catch {
      return undefined;
    }
  };
  const v = version(pkgDir);
  if (v === undefined || v !== version(join('node_modules', 'koffi'))) return null;
  const file = join(pkgDir, `${musl ? 'musl' : platform}_${arch}`, 'koffi.node');
  return existsSync(join(root, file)) ? file : null;
}
