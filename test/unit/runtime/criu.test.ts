import { describe, expect, it } from 'vitest';
import { criuCheckReason } from '../../../src/runtime/criu.js';

describe('criuCheckReason: why `criu check` fails, in its own words', () => {
  it('passes on "Looks good." with status 0', () => {
    expect(criuCheckReason('Looks good.\n', 0)).toBeNull();
    expect(criuCheckReason('Warn  (criu/kerndat.c:1103): CRIU was built without libnftables support\nLooks good.\n', 0)).toBeNull();
  });

  it("quotes the first error without criu's source location (Debian 12's CRIU 3.17.1 on a 6.18 kernel)", () => {
    const out = [
      'Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds',
      'Error (criu/vdso.c:613): vdso: Failed to fill self vdso symtable',
      'Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.',
      'Error (criu/crtools.c:260): Could not initialize kernel features detection.',
    ].join('\n');
    expect(criuCheckReason(out, 1)).toBe('vdso: Unexpected rt vDSO area bounds');
  });

  it('skips warnings; a failure without an error line gives its first line, or says it said nothing', () => {
    expect(criuCheckReason('Warn  (criu/cr-check.c:1): something\nUnsupported: tun\n', 1)).toBe('Unsupported: tun');
    expect(criuCheckReason('', 1)).toBe('it exited with status 1 and said nothing');
    expect(criuCheckReason('Looks good.\n', 1)).toBe('Looks good.');
  });
});
