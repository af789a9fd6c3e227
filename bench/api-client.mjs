#!/usr/bin/env node
// bench/api-client.mjs - plain HTTP clients against a warm `novabox serve` (run by bench/api.sh).
//
//   node bench/api-client.mjs latency    URL USER PASSWORD N          create -> ACTIVE, one at a time
//                                        (as seen by the poller, and as recorded by the server:
//                                        OS-SRV-USG:launched_at minus the time the POST was sent)
//   node bench/api-client.mjs throughput URL USER PASSWORD N CLIENTS  N creates by CLIENTS workers
//
// URL is the serve base (http://127.0.0.1:PORT). One token per run (scoped to project
// "admin"); each create is POST /servers followed by GET /servers/{id} every POLL_MS (1)
// until ACTIVE; every server made is deleted before exit (also on error), then the list
// must be empty. NETWORKS=none (default, as the anchors) or auto (the bridge network).
// Output: one line "<metric> <label> key=value ...".
import { scopedToken } from './api-token.mjs';
const [mode, base, user, password, nArg, clientsArg] = process.argv.slice(2);
const N = Math.min(Number(nArg ?? 20), 1000);
const CLIENTS = Math.min(Number(clientsArg ?? 8), 64);
const POLL_MS = Number(process.env.POLL_MS ?? 1);
/** Nova's `networks`: "none" (default: like the anchors' containers) or "auto" (the bridge) */
const NETWORKS = process.env.NETWORKS ?? 'none';
const LABEL = `novabox-serve/${NETWORKS === 'none' ? 'no-network' : 'bridge'}`;
const TIMEOUT_MS = 30_000;
if (!['latency', 'throughput'].includes(mode) || !base || !user || !password) {
  console.error('usage: api-client.mjs latency|throughput URL USER PASSWORD N [CLIENTS]');
  process.exit(2);
}

const tok = await scopedToken(base, user, password);
const H = { 'x-auth-token': tok, 'content-type': 'application/json' };
const made = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(method, path, body) {
  const r = await fetch(`${base}/compute/v2.1${path}`, { method, headers: H, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : undefined };
}

async function images() {
  const r = await fetch(`${base}/image/v2/images?name=busybox`, { headers: H });
  return (await r.json()).images[0].id;
}

const imageRef = await images();
const flavorRef = '6'; // c1.nano

/** ms from sending POST /servers to the first GET that shows ACTIVE */
async function createActive(name) {
  const t0 = performance.now();
  const wall0 = performance.timeOrigin + t0;
  const c = await api('POST', '/servers', { server: { name, imageRef, flavorRef, networks: NETWORKS } });
  if (c.status !== 202) throw new Error(`create: HTTP ${c.status} ${JSON.stringify(c.json)}`);
  const id = c.json.server.id;
  made.add(id);
  const tPost = performance.now() - t0;
  for (;;) {
    const s = await api('GET', `/servers/${id}`);
    const st = s.json?.server?.status;
    if (st === 'ACTIVE') {
      // when the server recorded it ACTIVE (µs, same host clock): free of the polling interval
      const launched = s.json.server['OS-SRV-USG:launched_at'];
      const recordedMs = Date.parse(`${launched.slice(0, 23)}Z`) + Number(launched.slice(23, 26) || 0) / 1000 - wall0;
      return { ms: performance.now() - t0, postMs: tPost, recordedMs, id };
    }
    if (st === 'ERROR') throw new Error(`server ${id} went to ERROR: ${JSON.stringify(s.json.server.fault)}`);
    if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`server ${id} not ACTIVE after ${TIMEOUT_MS} ms`);
    if (POLL_MS > 0) await sleep(POLL_MS);
  }
}

async function cleanup() {
  for (const id of made) {
    const r = await api('DELETE', `/servers/${id}`);
    if (r.status === 204 || r.status === 404) made.delete(id);
  }
  const left = (await api('GET', '/servers')).json.servers.length;
  return left;
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `n=${s.length} median=${q(0.5).toFixed(1)} p90=${q(0.9).toFixed(1)} min=${s[0].toFixed(1)} max=${s.at(-1).toFixed(1)}`;
}

let code = 0;
try {
  if (mode === 'latency') {
    const lat = [];
    const post = [];
    const rec = [];
    for (let i = 0; i < N; i++) {
      const r = await createActive(`lat-${i}`);
      lat.push(r.ms);
      post.push(r.postMs);
      rec.push(r.recordedMs);
      await api('DELETE', `/servers/${r.id}`);
      made.delete(r.id);
    }
    console.log(`api_create_active_ms ${LABEL} ${stats(lat)} poll_ms=${POLL_MS}`);
    console.log(`api_create_recorded_active_ms ${LABEL} ${stats(rec)}`);
    console.log(`api_create_post_ms ${LABEL} ${stats(post)}`);
  } else {
    let next = 0;
    const lat = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < N) {
          const i = next++;
          lat.push((await createActive(`tp-${i}`)).ms);
        }
      }),
    );
    const secs = (performance.now() - t0) / 1000;
    console.log(
      `api_throughput ${LABEL} servers=${N} clients=${CLIENTS} seconds=${secs.toFixed(2)} servers_per_s=${(N / secs).toFixed(1)} poll_ms=${POLL_MS}`,
    );
    console.log(`api_create_active_ms_loaded ${LABEL} ${stats(lat)}`);
  }
} catch (err) {
  console.error(`# FAILED: ${err.message}`);
  code = 1;
} finally {
  const t = performance.now();
  const left = await cleanup();
  console.log(`api_cleanup ${LABEL} deleted_in_s=${((performance.now() - t) / 1000).toFixed(2)} left=${left}`);
  if (left) code = 1;
}
process.exit(code);
