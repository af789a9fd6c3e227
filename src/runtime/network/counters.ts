import { readFileSync } from 'node:fs';

export type Traffic = { rxBytes: number; txBytes: number };

/**
 * Every host interface's counters from one read of /proc/net/dev, as the servers at their
 * other ends see them: what the host end sends the server receives, so rx and tx swap.
 * `server stats` reads this once per sample, not two sysfs files per server. Pure.
 */
export function parseNetDev(text: string): Map<string, Traffic> {
  const out = new Map<string, Traffic>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (f.length < 16) continue; // the two header lines
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
    out.set(line.slice(0, colon).trim(), { rxBytes: Number(f[8]), txBytes: Number(f[0]) });
  }
  return out;
}

/** parseNetDev of this network namespace's /proc/net/dev (empty if unreadable). */
export function allVethTraffic(): Map<string, Traffic> {
  try {
    return parseNetDev(readFileSync('/proc/net/dev', 'utf8'));
  } catch {
    return new Map();
  }
}
