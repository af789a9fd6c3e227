/** NOVABOX_TRACE=1: milestones with milliseconds since the process started, on stderr. */
const on = process.env.NOVABOX_TRACE === '1';
let last = 0;

export function trace(label: string): void {
  if (!on) return;
  const now = performance.now();
  process.stderr.write(`trace ${now.toFixed(2).padStart(8)} ms  +${(now - last).toFixed(2).padStart(6)}  ${label}\n`);
  last = now;
}
