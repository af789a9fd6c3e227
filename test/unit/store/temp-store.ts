import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { openStore, type Store } from '../../../src/store/db.js';
import type { NewServer } from '../../../src/store/servers.js';

/** A fresh directory per test, removed (with the stores opened in it) afterwards. */
export function useTempDirs(): { dir: () => string; open: (path?: string) => Store } {
  const dirs: string[] = [];
  const stores: Store[] = [];
  afterEach(() => {
    for (const s of stores.splice(0)) if (s.db.open) s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'novabox-store-'));
    dirs.push(d);
    return d;
  };
  return {
    dir,
    open: (path = join(dir(), 'state', 'novabox.db')) => {
      const s = openStore(path);
      stores.push(s);
      return s;
    },
  };
}

let n = 0;
export function newServer(over: Partial<NewServer> = {}): NewServer {
  n++;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    name: `s${n}`,
    projectId: 'p1',
    userId: 'u1',
    vmState: 'active',
    powerState: 1,
    ...over,
  };
}
