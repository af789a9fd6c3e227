/**
 * CRIU as live migration needs it: whether `criu check` passes on this host, and if not,
 * why, in criu's own words (the first error it printed, without its source location).
 * Debian 12's CRIU 3.17.1 on a 6.18 kernel says "vdso: Unexpected rt vDSO area bounds".
 */
import { spawnSync } from 'node:child_process';

export type CriuCheck = { ok: true } | { ok: false; reason: string };

/** The reason in `criu check`'s output (pure): its first error, as "vdso: Unexpected rt vDSO area bounds". */
export function criuCheckReason(output: string, status: number | null): string | null {
  if (status === 0 && /Looks good/i.test(output)) return null;
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = lines.find((l) => /^Error\b/.test(l)) ?? lines.find((l) => !/^Warn\b/.test(l)) ?? lines[0];
  const said = err?.replace(/^Error\s*(\([^)]*\))?:\s*/, '').trim();
  return said || `it exited with status ${status ?? 'unknown'} and said nothing`;
}

/** Runs `criu check` (as root; a few hundred milliseconds). */
export function criuCheck(criu = process.env.NOVABOX_CRIU || 'criu'): CriuCheck {
  const r = spawnSync(criu, ['check'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return {
      ok: false,
      reason: code === 'ENOENT' ? `CRIU is not installed (${criu} not found)` : `criu could not run: ${r.error.message}`,
    };
  }
  const reason = criuCheckReason(`${r.stdout ?? ''}\n${r.stderr ?? ''}`, r.status);
  return reason === null ? { ok: true } : { ok: false, reason };
}
