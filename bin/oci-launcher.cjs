#!/usr/bin/env node
'use strict';
// Launcher only: bin/novabox-oci is this file with the absolute path of the node that ran
// the build as its #! line (scripts/build.mjs): an engine is pointed at one executable.
require('../dist/novabox-oci.cjs')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
