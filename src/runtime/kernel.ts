import { readFileSync } from 'node:fs';

let release: [number, number] | null | undefined;

/** "6.18.44-fc" -> [6, 18]; null when unreadable. */
export function parseRelease(text: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The running kernel is at least major.minor (false when its release cannot be read). */
export function kernelAtLeast(major: number, minor: number): boolean {
  if (release === undefined) {
    try {
      release = parseRelease(readFileSync('/proc/sys/kernel/osrelease', 'utf8'));
    } catch {
      release = null;
    }
  }
  return release !== null && (release[0] > major || (release[0] === major && release[1] >= minor));
}
