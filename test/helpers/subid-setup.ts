/**
 * Tests never touch the host's /etc/subuid and /etc/subgid: every novabox they start
 * (in process or as a CLI, which inherits the environment) reads root's subordinate ids
 * from a pair of files of their own (the NOVABOX_SUBUID / NOVABOX_SUBGID test hooks of
 * runtime/userns/subid.ts). Tests of the files themselves point these elsewhere.
 */
import { mkdirSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

if (!process.env.NOVABOX_SUBUID || !process.env.NOVABOX_SUBGID) {
  const dir = join(tmpdir(), `novabox-test-subid-${process.getuid?.() ?? 0}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const name of ['subuid', 'subgid']) {
    const file = join(dir, name);
    if (existsSync(file)) continue;
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, 'root:1000000:1000000000\n', { mode: 0o644 });
    renameSync(tmp, file);
  }
  process.env.NOVABOX_SUBUID = join(dir, 'subuid');
  process.env.NOVABOX_SUBGID = join(dir, 'subgid');
}
