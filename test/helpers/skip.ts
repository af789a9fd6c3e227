/**
 * Skips that name their reason (scripts/test.mjs prints it with the count): a describe
 * whose tests cannot run here skips each of them in a beforeEach with the reason, and its
 * other hooks return early on the same condition.
 */
import { execFileSync } from 'node:child_process';
import { beforeEach } from 'vitest';

/**
 * Why a test runs on the host only, not in the pure cgroup v2 guest (test/vm): what it
 * checks does not depend on the cgroup version or the guest's kernel, and the guest's
 * emulated CPUs make it take minutes there (CI's time budget).
 */
export const HOST_ONLY = 'not cgroup-specific, run on the host: the emulated CPUs of the guest make it take minutes there';

/** Skip every test of the enclosing describe when `reason` is set. */
export function skipEachIf(reason: string | undefined): void {
  beforeEach((ctx) => ctx.skip(reason !== undefined, reason));
}

/** The commands of `names` the shell does not find (`command -v`, as the code under test looks). */
export function missingCommands(names: string[]): string[] {
  return names.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}
