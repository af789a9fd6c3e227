// A vitest reporter for scripts/test.mjs: writes every skipped test with its note (the
// reason given to `ctx.skip(cond, reason)`) to the file named by NBX_SKIPS_FILE, so the
// summary can say why each test did not run.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';

export default class SkipNotes {
  onTestRunEnd(testModules) {
    const out = [];
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r?.state === 'skipped') out.push({ file: relative(process.cwd(), m.moduleId), name: t.fullName, note: r.note ?? null });
      }
    }
    if (process.env.NBX_SKIPS_FILE) writeFileSync(process.env.NBX_SKIPS_FILE, JSON.stringify(out));
  }
}
