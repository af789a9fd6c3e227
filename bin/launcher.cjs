#!/usr/bin/env node
'use strict';
// Launcher only: runs a bundle `npm install` built through a V8 code cache (Node 20 has
// no module.enableCompileCache), written after the first whole run of each command.
// bin/novabox is this file with the absolute path of the node that ran the build as its
// #! line (scripts/build.mjs, scripts/launcher.mjs); `node bin/launcher.cjs` runs too.
// CommonJS on purpose: an ES module entry costs ~10 ms more to start.
// `run` first tries its own bundle (dist/novabox-run.cjs: no commander, no other command;
// dist/novabox-run-local.cjs for `--network none|host`: no store, no compute service);
// when that bundle's parser does not take the line (help, an unusual or bad option) the
// full CLI (dist/novabox.cjs) gets it, as every other command does.
const { closeSync, openSync, readFileSync, readSync, renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
// the loader's Module class without loading node:module (and the ES module loader behind it)
const Module = module.constructor;
const dist = join(__dirname, '..', 'dist');
const args = process.argv.slice(2);

/**
 * A file's bytes. readFileSync(path) without an encoding runs fstat and its JS read loop,
 * whose first use costs ~0.2 ms more per start than open + read into a buffer larger than
 * any cache (only the pages read into are touched); the bundle's text goes through
 * readFileSync's native utf8 path instead (without novabox.node: bundleSource).
 */
function readWhole(path) {
  const fd = openSync(path, 'r');
  try {
    let b = Buffer.allocUnsafeSlow(1 << 21);
    let n = 0;
    for (let r; (r = readSync(fd, b, n, b.length - n, null)) > 0; ) {
      n += r;
      if (n === b.length) b = Buffer.concat([b, Buffer.allocUnsafeSlow(b.length)]);
    }
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * novabox.node's file mapping (native-bindings/src/napi.c mapScript, mapFile), or null:
 * not built, or a build older than them. Commands that use the module anyway
 * (src/sys/native.ts) open it again: the same handle.
 */
let mapper;
function nativeMapper() {
  if (mapper !== undefined) return mapper;
  mapper = null;
  const mod = { exports: {} };
  try {
    process.dlopen(mod, join(process.env.NOVABOX_NATIVE_DIR ?? join(__dirname, '..', 'native-bindings', 'build'), 'novabox.node'));
    if (typeof mod.exports.mapScript === 'function' && typeof mod.exports.mapFile === 'function') mapper = mod.exports;
  } catch {
    /* not built: Node reads the files */
  }
  return mapper;
}

/**
 * A bundle's source, or undefined when there is no such file. scripts/build.mjs wrote it
 * in a function expression of the module wrapper's parameters, all ASCII: novabox.node
 * maps it and hands V8 the pages as a string outside the JavaScript heap (~1 ms less per
 * start than readFileSync and Module.wrap: they put two copies of the bundle on the young
 * heap, decoded and concatenated, and brought its first scavenge nearer).
 */
function bundleSource(file) {
  const code = nativeMapper()?.mapScript(file);
  if (typeof code === 'string') return code;
  if (code === -2) return undefined; // -ENOENT
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

/** A code cache's bytes (mapped when novabox.node is there), or undefined: the first run of its command. */
function cacheBytes(file) {
  const m = nativeMapper();
  if (m) {
    const b = m.mapFile(file);
    return typeof b === 'number' ? undefined : new Uint8Array(b);
  }
  try {
    return readWhole(file);
  } catch {
    return undefined;
  }
}

/**
 * Load a bundle through its code cache; returns its exports and a function that writes the
 * cache. `req`: the bundle's require; the run bundle takes this file's own (it resolves
 * node: builtins and packages from bin/ as from dist/, and scripts/build.mjs checks that it
 * has no relative require), saving a createRequire per start. `kind`: the kind of run the
 * cache file is for, checked by the bundle before the cache is written.
 */
function load(file, cacheFile, req = Module.createRequire(file), kind, source = bundleSource(file)) {
  if (source === undefined) throw Object.assign(new Error(`${file} is missing: build novabox (npm run build)`), { code: 'ENOENT' });
  const cachedData = cacheBytes(cacheFile);
  const script = new Script(source, { filename: file, cachedData });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, req, mod, file, dist);
  // V8 caches what this run compiled: only a run that did its command's whole work (exit 0,
  // not help, version or a dry run) writes it. A first `run --help` wrote a cache without
  // the container path, and every later run compiled that lazily (~5 ms CPU each).
  const saveCache = (code) => {
    // Nor a run that did one-time work (src/util/cache-hint.ts: `run` building busybox), nor
    // a run of another kind than the cache file's (`run` on the bridge network or not).
    const whole = code === 0 && !args.some((a) => /^(-h|--help|-V|--version|--dry-run)$/.test(a)) && mod.exports.cacheable?.(kind) !== false;
    if ((!cachedData || script.cachedDataRejected) && whole) {
      try {
        const tmp = `${cacheFile}.${process.pid}`;
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        /* read-only install: run without a cache */
      }
    }
  };
  return { exports: mod.exports, saveCache };
}

function finish(bundle, done, fallback) {
  done.then((code) => {
    // the bundle left out a module this line needs (the local run bundle: the image's first
    // use, a bridge network; a command's bundle: help, another command): nothing was done
    // yet; the fuller bundle runs the line again
    if (code === 'full') return void fallback();
    bundle.saveCache(code);
    // libc _exit when the command loaded the native code (src/util/exit.ts), unless Node has output
    // of its own to write at teardown (profiles, coverage, reports)
    if (!process.execArgv.length && !process.env.NODE_V8_COVERAGE && !process.env.NODE_OPTIONS) bundle.exports.exitNow?.(code);
    process.exit(code);
  });
}

const runBundle = join(dist, 'novabox-run.cjs');

/** Run the line with a `run` bundle; false when its parser does not take it. */
function runWith(file, kind) {
  const run = load(file, `${file}${kind === 'net' ? '.net' : ''}.cache`, require, kind);
  const done = run.exports.main(args);
  // the whole run bundle has the same parser: it takes the line
  if (done) finish(run, done, () => runWith(runBundle, 'net') || process.exit(1));
  return done !== undefined;
}

let done = false;
if (args[0] === 'run') {
  // The bridge network (the default) loads the store and the compute service, `--network
  // none|host` does not: a bundle without them, and one cache each. A guess from argv;
  // the bundle confirms it before the cache is written (src/util/cache-hint.ts).
  const local = args.some((a, i) => /^--network=(none|host)$/.test(a) || (a === '--network' && /^(none|host)$/.test(args[i + 1])));
  done = local ? runWith(join(dist, 'novabox-run-local.cjs'), 'local') : runWith(runBundle, 'net');
}
/** The full CLI (every command) for the line. */
function fullCli(word) {
  const file = join(dist, 'novabox.cjs');
  const cli = load(file, `${file}.${word}.cache`);
  finish(cli, cli.exports.main(args), () => process.exit(1)); // it has every module
}

if (!done) {
  // One cache per command, the group's verb included (`server-list`, `flavor-show`, `ps`):
  // each holds the functions that command compiled (its first whole run after a build
  // writes it). A cache written by another verb of the group (the first `server create`)
  // left `server list` compiling its own path lazily on every start (the table, the
  // views, reconcile), and `server image` (snapshots: image store, packer, hashing) shares
  // little with the other server verbs. Only a run with exit status 0 writes one, so the
  // files are one per real verb.
  const isWord = (w) => /^[a-z][a-z-]{0,20}$/.test(w ?? '');
  const group = /^(server|flavor|image|network|console)$/.test(args[0]) && isWord(args[1]);
  const word = !isWord(args[0]) ? 'default' : group ? `${args[0]}-${args[1]}` : args[0];
  // One bundle per command (dist/verbs/<server-verb or group>.cjs, scripts/build.mjs): the
  // full CLI without the other commands' modules. Help and version describe every command.
  const own = !args.some((a) => /^(-h|--help|-V|--version)$/.test(a)) && isWord(args[0]) && (args[0] !== 'server' || group);
  const file = own && join(dist, 'verbs', `${args[0] === 'server' ? word : args[0]}.cjs`);
  // undefined: no bundle of its own, the full CLI
  const source = own ? bundleSource(file) : undefined;
  if (source) {
    const cli = load(file, join(dist, 'verbs', `${word}.cache`), undefined, undefined, source);
    finish(cli, cli.exports.main(args), () => fullCli(word));
  } else fullCli(word);
}
