import { readFileSync } from 'node:fs';

/**
 * A server's network traffic from the host end of its veth: what the host end sends
 * the server receives, so rx and tx swap. null when the link is gone.
 */
export function vethTraffic(hostIf: string): { rxBytes: number; txBytes: number } | null {
  try {
    const read = (f: string) => Number(readFileSync(`/sys/class/net/${hostIf}/statistics/${f}`, 'utf8'));
    return { rxBytes: read('tx_bytes'), txBytes: read('rx_bytes') };
  } catch {
    return null;
  }
}
