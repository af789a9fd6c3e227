/** NOVABOX_TRACE=1: milestones with milliseconds since the process started, on stderr. */
import { writeSync } from 'node:fs';

const on = process.env.NOVABOX_TRACE === '1';
let last = 0;

export function trace(label: string): void {
  if (!on) return;
  const now = performance.now();
  // fd 2 directly: process.stderr would be built on the first milestone (node:stream,
  // node:tty; ~2.5 ms), and that cost would show in the next milestone, not in ours
  try {
    writeSync(2, `trace ${now.toFixed(2).padStart(8)} ms  +${(now - last).toFixed(2).padStart(6)}  ${label}\n`);
  } catch {
    /* EAGAIN on a non-blocking stderr: drop the line */
  }
  last = now;
}
