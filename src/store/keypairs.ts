/** Nova's keypairs: per user, unique by name; the public half only. */
import { Conflict, NotFound } from '../errors.js';
import { isConstraint, statementCache, type Database } from './sqlite.js';
import { nowIso } from './time.js';
import type { Keypair } from '../model/records.js';
export type { Keypair } from '../model/records.js';

const COLS = 'id, user_id AS userId, name, type, public_key AS publicKey, fingerprint, created_at AS createdAt';

export class KeypairRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  list(userId: string): Keypair[] {
    return this.sql<Keypair>(`SELECT ${COLS} FROM keypairs WHERE user_id = ? ORDER BY name`).all(userId);
  }

  get(userId: string, name: string): Keypair {
    const k = this.sql<Keypair>(`SELECT ${COLS} FROM keypairs WHERE user_id = ? AND name = ?`).get(userId, name);
    if (!k) throw new NotFound(`Keypair ${name} not found for user ${userId}`);
    return k;
  }

  insert(k: Omit<Keypair, 'id' | 'createdAt'>): Keypair {
    try {
      this.sql('INSERT INTO keypairs (user_id, name, type, public_key, fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
        k.userId,
        k.name,
        k.type,
        k.publicKey,
        k.fingerprint,
        nowIso(),
      );
    } catch (err) {
      if (isConstraint(err, 'UNIQUE')) throw new Conflict(`Key pair '${k.name}' already exists.`, { cause: err });
      throw err;
    }
    return this.get(k.userId, k.name);
  }

  delete(userId: string, name: string): void {
    if (this.sql('DELETE FROM keypairs WHERE user_id = ? AND name = ?').run(userId, name).changes === 0) {
      throw new NotFound(`Keypair ${name} not found for user ${userId}`);
    }
  }

  count(userId: string): number {
    return this.sql<{ n: number }>('SELECT count(*) AS n FROM keypairs WHERE user_id = ?').get(userId)!.n;
  }
}
