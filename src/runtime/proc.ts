import { readFileSync } from 'node:fs';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or undefined if gone. */
export function readProcStart(pid: number): number | undefined {
  let text: string;
  try {
    // utf8: Node reads it in one native call (other encodings loop in JS); a comm with
    // invalid UTF-8 only gets replacement characters, before the last ')' we split at
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  return Number(rest[19]);
}

let cachedBootId: string | undefined;
export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}
