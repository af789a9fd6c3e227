/**
 * cgroup v1: the first cgroup.procs write after a quiet spell waits out an RCU grace
 * period (docs/design-notes.md, "The start path"). bin/novabox primes it at start-up for
 * a CLI; a long-lived serve primes it when a create arrives: a no-op write of its own pid
 * into its own pids cgroup, in the thread pool, so the grace period elapses while the
 * request is checked and recorded, and the new init's placement takes the fast path.
 */
import { open, readFileSync, write, close } from 'node:fs';

let target: string | null | undefined;

function procsFile(): string | null {
  if (target !== undefined) return target;
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => /^\d+:pids:/.test(l));
    target = line ? `/sys/fs/cgroup/pids${line.slice(line.indexOf(':pids:') + 6)}/cgroup.procs` : null;
  } catch {
    target = null;
  }
  return target;
}

export function primeCgroupAttach(): void {
  const file = procsFile();
  if (!file) return;
  open(file, 'w', (err, fd) => {
    if (err) return void (target = null);
    write(fd, String(process.pid), () => close(fd, () => {}));
  });
}
