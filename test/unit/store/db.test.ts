import { chmodSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_WAL_PAGES, openStore } from '../../../src/store/db.js';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import { nowIso, toStoredTime } from '../../../src/store/time.js';
import { useTempDirs } from './temp-store.js';

const t = useTempDirs();

describe('openStore', () => {
  it('creates the directory 0700 and sets the pragmas', () => {
    const dir = t.dir();
    const s = t.open(join(dir, 'a', 'b', 'novabox.db'));
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(s.db.pragma('busy_timeout', { simple: true })).toBe(30000);
    expect(s.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(s.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
  });

  it("keeps SQLite's checkpoint interval unless told (the CLI's is shorter: less WAL to read at each cold open)", () => {
    const dir = t.dir();
    const s = t.open(join(dir, 'novabox.db'));
    expect(s.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    const cli = openStore(join(dir, 'novabox.db'), { walPages: CLI_WAL_PAGES });
    try {
      expect(cli.db.pragma('wal_autocheckpoint', { simple: true })).toBe(128);
      // its commits checkpoint once the log passes that many frames
      cli.tx(() => {
        for (let i = 0; i < 400; i++) cli.setSetting(`k${i}`, 'x'.repeat(3000));
      });
      cli.setSetting('last', '1');
      const [r] = cli.db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
      expect(r!.log).toBeLessThan(400);
    } finally {
      cli.close();
    }
  });

  it('makes the database, its -wal and -shm 0600, and fixes files an older novabox made 0644', () => {
    const path = join(t.dir(), 'novabox.db');
    const modes = () => [path, `${path}-wal`, `${path}-shm`].map((f) => statSync(f).mode & 0o777);
    const a = t.open(path);
    a.flavors.create({ name: 'w', vcpus: 1, ramMiB: 1, diskGiB: 0 }); // the -wal and -shm exist while it is open
    expect(modes()).toEqual([0o600, 0o600, 0o600]);
    for (const f of [path, `${path}-wal`, `${path}-shm`]) chmodSync(f, 0o644);
    const b = t.open(path); // a second connection while the first keeps the -wal and -shm
    expect(modes()).toEqual([0o600, 0o600, 0o600]);
    expect(b.flavors.list().map((f) => f.name)).toContain('w');
  });

  it('defaults to novabox.db under NOVABOX_ROOT', () => {
    const dir = t.dir();
    const old = process.env.NOVABOX_ROOT;
    process.env.NOVABOX_ROOT = join(dir, 'root');
    try {
      const s = openStore();
      expect(s.path).toBe(join(dir, 'root', 'novabox.db'));
      s.close();
    } finally {
      if (old === undefined) delete process.env.NOVABOX_ROOT;
      else process.env.NOVABOX_ROOT = old;
    }
  });

  it('is idempotent: a second open migrates nothing and keeps data and identity', () => {
    const path = join(t.dir(), 'novabox.db');
    const a = t.open(path);
    const project = a.getSetting('local_project_id');
    a.flavors.create({ name: 'keep', vcpus: 1, ramMiB: 1, diskGiB: 0 });
    a.close();
    const b = t.open(path);
    expect(b.db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(b.getSetting('local_project_id')).toBe(project);
    expect(b.flavors.list().map((f) => f.name)).toContain('keep');
    expect(b.flavors.list()).toHaveLength(7);
  });

  it('refuses a database from a newer novabox', () => {
    const path = join(t.dir(), 'novabox.db');
    const a = t.open(path);
    a.db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    a.close();
    const n = MIGRATIONS.length;
    expect(() => openStore(path)).toThrow(new RegExp(`schema version ${n + 1} is newer than this novabox knows \\(${n}\\)`));
  });

  it('creates the local project and user once, as 32-hex ids', () => {
    const s = t.open();
    const p = s.getSetting('local_project_id');
    const u = s.getSetting('local_user_id');
    expect(p).toMatch(/^[0-9a-f]{32}$/);
    expect(u).toMatch(/^[0-9a-f]{32}$/);
    expect(p).not.toBe(u);
  });

  it('gets and sets settings', () => {
    const s = t.open();
    expect(s.getSetting('nope')).toBeUndefined();
    s.setSetting('k', 'v1');
    s.setSetting('k', 'v2');
    expect(s.getSetting('k')).toBe('v2');
  });

  it('tx rolls back everything on a throw', () => {
    const s = t.open();
    expect(() =>
      s.tx(() => {
        s.setSetting('x', '1');
        s.tx(() => s.setSetting('y', '1'));
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(s.getSetting('x')).toBeUndefined();
    expect(s.getSetting('y')).toBeUndefined();
  });
});

describe('time', () => {
  it('nowIso is Nova-shaped, UTC, and strictly increasing', () => {
    const a = nowIso();
    const b = nowIso();
    expect(a).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
    expect(b > a).toBe(true);
    expect(Math.abs(Date.parse(`${a}Z`.replace(/(\.\d{3})\d{3}Z$/, '$1Z')) - Date.now())).toBeLessThan(5000);
  });

  it.each([
    ['2024-05-01T12:00:00Z', '2024-05-01T12:00:00.000000'],
    ['2024-05-01T12:00:00', '2024-05-01T12:00:00.000000'],
    ['2024-05-01T12:00:00.123456', '2024-05-01T12:00:00.123456'],
    ['2024-05-01T14:00:00.5+02:00', '2024-05-01T12:00:00.500000'],
    ['2024-05-01T12:00:00-0130', '2024-05-01T13:30:00.000000'],
    ['2024-05-01T12:00Z', '2024-05-01T12:00:00.000000'],
    ['2024-05-01', '2024-05-01T00:00:00.000000'],
  ])('toStoredTime(%s) = %s', (input, stored) => {
    expect(toStoredTime(input)).toBe(stored);
  });

  it.each(['yesterday', '2024-13-01T00:00:00Z', ''])('toStoredTime(%j) is a BadRequest', (input) => {
    expect(() => toStoredTime(input)).toThrow(expect.objectContaining({ code: 'bad-request' }));
  });
});
