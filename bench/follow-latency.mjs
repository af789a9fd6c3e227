#!/usr/bin/env node
// bench/follow-latency.mjs NOVABOX SERVER INIT_PID [LINES]
//
// How long a line the server writes takes to show in `console log show --follow`: one
// follower is started and left running; then, LINES times with a random pause between,
// a line is written to the server's own stdout (/proc/INIT_PID/fd/1: the very descriptor
// the server's command writes to, so the line takes the server's path through the
// monitor into console.log) and the time until the follower prints it is taken, both on
// this process's monotonic clock. Prints one number of milliseconds per line on stdout.
import { spawn } from 'node:child_process';
import { openSync, writeSync, closeSync } from 'node:fs';

const [novabox, server, pid, linesArg] = process.argv.slice(2);
const lines = Number(linesArg ?? 30);
if (!novabox || !server || !pid) {
  process.stderr.write('usage: follow-latency.mjs NOVABOX SERVER INIT_PID [LINES]\n');
  process.exit(2);
}
const child = spawn(process.execPath, [novabox, 'console', 'log', 'show', '--follow', server], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let buf = '';
let waiting = null; // { tag, t0, resolve }
child.stdout.setEncoding('utf8');
child.stdout.on('data', (d) => {
  const t = performance.now();
  buf += d;
  let i = buf.indexOf('\n');
  while (i >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (waiting && line === waiting.tag) {
      const w = waiting;
      waiting = null;
      w.resolve(t - w.t0);
    }
    i = buf.indexOf('\n');
  }
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fd = openSync(`/proc/${pid}/fd/1`, 'w');
try {
  // the follower is up once it shows a line written after it started
  for (let k = 0; ; k++) {
    if (k > 100) throw new Error('the follower showed nothing in 10 s');
    const tag = `follow-latency warm ${process.pid} ${k}`;
    const shown = new Promise((resolve) => (waiting = { tag, t0: performance.now(), resolve }));
    writeSync(fd, `${tag}\n`);
    if (await Promise.race([shown, sleep(100).then(() => null)])) break;
    waiting = null;
  }
  for (let k = 0; k < lines; k++) {
    await sleep(20 + Math.random() * 80);
    const tag = `follow-latency ${process.pid} ${k}`;
    const shown = new Promise((resolve) => (waiting = { tag, t0: 0, resolve }));
    waiting.t0 = performance.now();
    writeSync(fd, `${tag}\n`);
    const ms = await Promise.race([shown, sleep(2000).then(() => null)]);
    process.stdout.write(ms === null ? 'fail\n' : `${ms.toFixed(2)}\n`);
    waiting = null;
  }
} finally {
  closeSync(fd);
  child.kill('SIGINT');
}
