/**
 * The part of better-sqlite3's API the store uses. Types only: the module itself is
 * loaded in openStore(), so commands that never touch the database never load it.
 */
export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface Statement<Row = unknown> {
  run(...params: unknown[]): RunResult;
  get(...params: unknown[]): Row | undefined;
  all(...params: unknown[]): Row[];
}

export interface Transaction<F extends (...args: never[]) => unknown> {
  (...args: Parameters<F>): ReturnType<F>;
  deferred(...args: Parameters<F>): ReturnType<F>;
  immediate(...args: Parameters<F>): ReturnType<F>;
  exclusive(...args: Parameters<F>): ReturnType<F>;
}

export interface Database {
  readonly inTransaction: boolean;
  readonly open: boolean;
  prepare<Row = unknown>(sql: string): Statement<Row>;
  exec(sql: string): this;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>;
  close(): this;
}

export type DatabaseConstructor = new (path: string, options?: { timeout?: number; nativeBinding?: unknown }) => Database;

/** Runs fn in one BEGIN IMMEDIATE transaction (a savepoint when already inside one). */
export type Tx = <T>(fn: () => T) => T;

/** SQLite's constraint error codes, as better-sqlite3 reports them on err.code. */
export function isConstraint(err: unknown, kind: 'UNIQUE' | 'PRIMARYKEY' | 'FOREIGNKEY'): boolean {
  return (err as { code?: string } | null)?.code === `SQLITE_CONSTRAINT_${kind}`;
}

/** prepare() with a per-connection cache: the same SQL compiles once. */
export function statementCache(db: Database): <Row = unknown>(sql: string) => Statement<Row> {
  const cache = new Map<string, Statement<unknown>>();
  return <Row>(sql: string) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s as Statement<Row>;
  };
}
