#!/usr/bin/env node
'use strict';
// Launcher only: bin/novabox-oci-js is this file with the absolute path of the node that
// ran the build as its #! line (scripts/build.mjs). The engine-facing bin/novabox-oci is
// a C program (native-bindings/src/oci.c) that does the usual case of start, state, kill
// and delete itself and execs this for the rest (create, exec, every error, ...).
// The bundle runs through a V8 code cache per verb (as bin/novabox's launcher.cjs does),
// written after the verb's first run with exit status 0: `create` runs once per container.
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { Script } = require('node:vm');
const Module = module.constructor;
const args = process.argv.slice(2);
const file = join(__dirname, '..', 'dist', 'novabox-oci.cjs');
// the verb: the first word after the global options (those with a value take the next word)
let i = 0;
while (i < args.length && args[i].startsWith('-')) i += /^--(root|log|log-format)$/.test(args[i]) ? 2 : 1;
const verb = /^[a-z]{1,12}$/.test(args[i] ?? '') ? args[i] : 'default';
const cacheFile = `${file}.${verb}.cache`;
let cachedData;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  /* the verb's first run */
}
const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, Module.createRequire(file), mod, file, join(__dirname, '..', 'dist'));
mod.exports.main(args).then((code) => {
  if (code === 0 && (!cachedData || script.cachedDataRejected) && !args.some((a) => /^(-h|--help|-v|--version)$/.test(a))) {
    try {
      const tmp = `${cacheFile}.${process.pid}`;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch {
      /* read-only install: run without a cache */
    }
  }
  process.exitCode = code;
});
