/**
 * The state database. Many CLI processes use it at once (there is no daemon), so:
 * WAL lets readers run beside the one writer; busy_timeout makes a writer wait for the
 * lock instead of failing; and every read-modify-write runs in BEGIN IMMEDIATE, which
 * takes the write lock before the read, so no two processes act on the same stale row.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs';
import Sqlite from 'better-sqlite3';
import { projectRoot } from '../sys/native.js';
import { loadAddon } from '../sys/addon.js';
import { dirname, join } from 'node:path';
import { NovaboxError } from '../errors.js';
import { stateRoot } from '../util/paths.js';
import { sleepSync } from '../util/fs.js';
import { ActionRepo } from './actions.js';
import { FlavorRepo } from './flavors.js';
import { IdentityRepo } from './identity.js';
import { KeypairRepo } from './keypairs.js';
import { ResizeRepo } from './resizes.js';
import { LeaseRepo } from './leases.js';
import { IdmapLeaseRepo } from './idmap-leases.js';
import { PortRepo } from './ports.js';
import { VolumeCopyRepo, VolumeRepo, VolumeSnapshotRepo } from './volumes.js';
import { MIGRATIONS } from './migrations.js';
import { ServerRepo } from './servers.js';
import { statementCache, type Database, type DatabaseConstructor, type Tx } from './sqlite.js';

export interface Store {
  readonly path: string;
  readonly db: Database;
  readonly flavors: FlavorRepo;
  readonly servers: ServerRepo;
  readonly actions: ActionRepo;
  readonly identity: IdentityRepo;
  readonly keypairs: KeypairRepo;
  readonly resizes: ResizeRepo;
  readonly leases: LeaseRepo;
  /** servers' id ranges (the record; runtime/userns/leases.ts decides) */
  readonly idmaps: IdmapLeaseRepo;
  /** servers' published ports (the kernel's rules: runtime/network/ports.ts) */
  readonly ports: PortRepo;
  /** named volumes and their attachments (compute/volumes.ts) */
  readonly volumes: VolumeRepo;
  /** volume snapshots (`volume snapshot …`) */
  readonly volumeSnapshots: VolumeSnapshotRepo;
  /** volumes being copied (`volume create --source`/`--snapshot`), until their row is inserted */
  readonly volumeCopies: VolumeCopyRepo;
  /** Runs fn in one BEGIN IMMEDIATE transaction; nested calls become savepoints. */
  tx<T>(fn: () => T): T;
  getSetting(key: string): string | undefined;
  setSetting(key: string, value: string): void;
  close(): void;
}

// 30 s: under heavy overload (30 CLIs on 2 vCPUs in the TCG guest) lock holders are
// descheduled long enough that a queue of writers exceeded 10 s.
const BUSY_TIMEOUT_MS = 30_000;

/**
 * better-sqlite3's JavaScript is bundled (and code-cached) with ours; this module itself
 * is only loaded by commands that use the database, never by `novabox run`. Its native
 * addon is opened by path (src/sys/addon.ts), which skips the `bindings` package's search
 * of a dozen directories and the module loader on every open.
 */
function nativeBinding(): unknown {
  try {
    return loadAddon(join(projectRoot(), 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  } catch {
    return undefined; // laid out differently (another bundler): better-sqlite3 finds it itself
  }
}

/**
 * Switching a fresh database to WAL needs it alone for a moment, and SQLite answers
 * SQLITE_BUSY at once, without the busy handler, when other processes have it open: as
 * when many CLIs start on a new state root together. Once in WAL the mode sticks.
 */
function enableWal(db: Database): void {
  for (let attempt = 1; ; attempt++) {
    try {
      if (String(db.pragma('journal_mode', { simple: true })).toLowerCase() === 'wal') return;
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 200) throw err;
      sleepSync(5 + Math.floor(Math.random() * 10));
    }
  }
}

/**
 * The database and its -wal and -shm files hold password hashes and tokens: 0600, not
 * only behind the 0700 state directory. A new database is made 0600 before SQLite opens
 * it (SQLite gives the -wal and -shm files the database's mode); files an older novabox
 * made 0644 are fixed.
 */
function makePrivate(path: string): void {
  const st = statSync(path, { throwIfNoEntry: false });
  // the database is fixed last (below): private, it says the -wal and -shm files are too
  if (st && (st.mode & 0o077) === 0) return;
  if (!st) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      closeSync(openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  for (const f of [`${path}-wal`, `${path}-shm`, path]) {
    const fst = statSync(f, { throwIfNoEntry: false });
    if (fst && (fst.mode & 0o077) !== 0) chmodSync(f, fst.mode & 0o7700);
  }
}

/**
 * How many WAL frames (pages) a command-line process lets the log grow to before its commit
 * checkpoints it (SQLite's default: 1000). A process that opens the database when no other
 * has it open rebuilds the WAL index by reading every frame since the last checkpoint:
 * ~1.5 ms per start at 500 frames here, what a cold `server list` paid on average (a write
 * command adds 10-20 frames). At 128 that read stays under ~0.4 ms, and the write command
 * that checkpoints (about one in eight) pays ~1.5 ms for it. The API server keeps the
 * default: it opens the database once, and checkpoints (with their fsyncs) on its event
 * loop would cost its throughput.
 */
export const CLI_WAL_PAGES = 128;

export interface OpenOptions {
  /** PRAGMA wal_autocheckpoint for this connection (CLI_WAL_PAGES); SQLite's default without */
  walPages?: number;
}

export function openStore(path: string = join(stateRoot(), 'novabox.db'), opts: OpenOptions = {}): Store {
  if (path !== ':memory:') makePrivate(path);
  const binding = nativeBinding();
  const db = new (Sqlite as unknown as DatabaseConstructor)(path, {
    timeout: BUSY_TIMEOUT_MS,
    ...(binding ? { nativeBinding: binding } : {}),
  });
  try {
    enableWal(db);
    // one call for the connection's settings (each pragma() prepares a statement of its own)
    db.exec(
      `PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON${opts.walPages !== undefined ? `; PRAGMA wal_autocheckpoint = ${Math.trunc(opts.walPages)}` : ''}`,
    );
    const tx: Tx = (fn) => db.transaction(fn).immediate();
    migrate(db, tx);
    const sql = statementCache(db);
    const store: Store = {
      path,
      db,
      flavors: new FlavorRepo(db, tx),
      servers: new ServerRepo(db, tx),
      actions: new ActionRepo(db, tx),
      identity: new IdentityRepo(db, tx),
      keypairs: new KeypairRepo(db),
      resizes: new ResizeRepo(db),
      leases: new LeaseRepo(db, tx),
      idmaps: new IdmapLeaseRepo(db),
      ports: new PortRepo(db),
      volumes: new VolumeRepo(db),
      volumeSnapshots: new VolumeSnapshotRepo(db),
      volumeCopies: new VolumeCopyRepo(db),
      tx,
      getSetting: (key) => sql<{ value: string }>('SELECT value FROM settings WHERE key = ?').get(key)?.value,
      setSetting: (key, value) =>
        void sql('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value),
      close: () => void db.close(),
    };
    seedIdentity(db, tx);
    return store;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * One transaction per migration. The version is read again inside the transaction:
 * a second process that opened the database at the same time waits for the first and
 * then finds nothing left to do.
 */
function migrate(db: Database, tx: Tx): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const v = version();
  if (v === MIGRATIONS.length) return;
  if (v > MIGRATIONS.length) {
    throw new NovaboxError('internal', `database schema version ${v} is newer than this novabox knows (${MIGRATIONS.length})`, {
      hint: 'upgrade novabox',
    });
  }
  for (let i = 0; i < MIGRATIONS.length; i++) {
    tx(() => {
      if (version() !== i) return;
      db.exec(MIGRATIONS[i]!.sql);
      db.pragma(`user_version = ${i + 1}`);
    });
  }
}

/** The CLI acts as one local user in one local project; ids in Keystone's form (32 hex). */
function seedIdentity(db: Database, tx: Tx): void {
  const have = db.prepare<{ n: number }>("SELECT count(*) AS n FROM settings WHERE key IN ('local_project_id', 'local_user_id')").get();
  if (have?.n === 2) return;
  const add = db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)');
  tx(() => {
    add.run('local_project_id', randomUUID().replaceAll('-', ''));
    add.run('local_user_id', randomUUID().replaceAll('-', ''));
  });
}
