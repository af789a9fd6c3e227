#!/usr/bin/env node
// bench/snapshot-client.mjs - the snapshot of a server through a warm `novabox serve`
// (run by bench/snapshot.sh), beside `tar -cf` of the same server's upper dir.
//
//   node bench/snapshot-client.mjs URL USER PASSWORD SERVER_ID UPPER_DIR OUT_DIR ROUNDS
//
// Each round, in alternating order, with `sync` (untimed) before each:
//   delta_tar  tar --xattrs --xattrs-include='trusted.*' -cf OUT_DIR/delta.tar -C UPPER_DIR .
//   serve      POST /compute/v2.1/servers/{id}/action {"createImage": {"name": ...}} (202,
//              Location: the image), then GET /image/v2/images/{id} every POLL_MS (1) until
//              "active": the time from sending the POST to seeing it active
// then (untimed) the image is deleted (DELETE /image/v2/images/{id}) and the tar removed.
// Output: "snapshot_ms <label> n= median= min= max=" for both, and the paired ratio.
import { scopedToken } from './api-token.mjs';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const [base, user, password, serverId, upper, out, roundsArg] = process.argv.slice(2);
const ROUNDS = Math.min(Number(roundsArg ?? 7), 100);
const POLL_MS = Number(process.env.POLL_MS ?? 1);
const TIMEOUT_MS = 60_000;
if (!base || !user || !password || !serverId || !upper || !out) {
  console.error('usage: snapshot-client.mjs URL USER PASSWORD SERVER_ID UPPER_DIR OUT_DIR [ROUNDS]');
  process.exit(2);
}

const H = { 'x-auth-token': await scopedToken(base, user, password), 'content-type': 'application/json' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const made = new Set();

async function deleteImage(id) {
  const r = await fetch(`${base}/image/v2/images/${id}`, { method: 'DELETE', headers: H });
  await r.arrayBuffer();
  if (r.status !== 204 && r.status !== 404) throw new Error(`DELETE image ${id}: HTTP ${r.status}`);
  made.delete(id);
}

async function snapshot(name) {
  const t0 = performance.now();
  const r = await fetch(`${base}/compute/v2.1/servers/${serverId}/action`, {
    method: 'POST',
    headers: H,
    body: JSON.stringify({ createImage: { name } }),
  });
  const text = await r.text();
  if (r.status !== 202) throw new Error(`createImage: HTTP ${r.status} ${text}`);
  const id = r.headers.get('location').split('/').pop();
  made.add(id);
  for (;;) {
    const g = await fetch(`${base}/image/v2/images/${id}`, { headers: H });
    const img = await g.json();
    if (img.status === 'active') return { ms: performance.now() - t0, id };
    if (img.status !== 'queued' && img.status !== 'saving') throw new Error(`image ${id} is ${img.status}`);
    if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`image ${id} not active after ${TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

function deltaTar() {
  const t0 = performance.now();
  const r = spawnSync('tar', ['--xattrs', '--xattrs-include=trusted.*', '-cf', `${out}/delta.tar`, '-C', upper, '.'], { stdio: 'inherit' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`tar exited ${r.status}`);
  rmSync(`${out}/delta.tar`);
  return ms;
}

const sync = () => spawnSync('sync');
const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const med = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `n=${s.length} median=${med.toFixed(1)} min=${s[0].toFixed(1)} max=${s[s.length - 1].toFixed(1)}`;
};

const tars = [];
const serves = [];
const ratios = [];
try {
  // warm-up (untimed): code paths of serve, the first token check, the page cache
  const w = await snapshot('warm-snap-warmup');
  await deleteImage(w.id);
  deltaTar();
  for (let i = 0; i < ROUNDS; i++) {
    let tar;
    let snap;
    const doTar = () => {
      sync();
      tar = deltaTar();
    };
    const doSnap = async () => {
      sync();
      snap = await snapshot(`warm-snap-${i}`);
      await deleteImage(snap.id);
    };
    if (i % 2) {
      await doSnap();
      doTar();
    } else {
      doTar();
      await doSnap();
    }
    tars.push(tar);
    serves.push(snap.ms);
    ratios.push(snap.ms / tar);
    console.error(`# round ${i + 1}/${ROUNDS}: delta_tar ${tar.toFixed(1)} ms, serve createImage -> active ${snap.ms.toFixed(1)} ms`);
  }
} finally {
  for (const id of [...made]) await deleteImage(id).catch(() => {});
}
console.log(`snapshot_ms delta_tar_warmrun ${stats(tars)}`);
console.log(`snapshot_ms novabox_serve_createImage ${stats(serves)}`);
console.log(`snapshot_ratio novabox_serve_createImage/delta_tar ${stats(ratios)}`);
