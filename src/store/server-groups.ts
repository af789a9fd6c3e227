/** Server groups (Nova's os-server-groups) and their members: rows only; the rules live in compute/server-groups.ts. */
import { statementCache, type Database } from './sqlite.js';
import { nowIso } from './time.js';

export interface ServerGroup {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  policy: string;
  createdAt: string;
}

const COLS = 'id, name, project_id AS projectId, user_id AS userId, policy, created_at AS createdAt';

export class ServerGroupRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(db: Database) {
    this.sql = statementCache(db);
  }

  insert(g: Omit<ServerGroup, 'createdAt'>): ServerGroup {
    this.sql('INSERT INTO server_groups (id, name, project_id, user_id, policy, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      g.id,
      g.name,
      g.projectId,
      g.userId,
      g.policy,
      nowIso(),
    );
    return this.get(g.id)!;
  }

  get(id: string): ServerGroup | undefined {
    return this.sql<ServerGroup>(`SELECT ${COLS} FROM server_groups WHERE id = ?`).get(id);
  }

  list(projectId?: string): ServerGroup[] {
    return this.sql<ServerGroup>(`SELECT ${COLS} FROM server_groups WHERE (@p IS NULL OR project_id = @p) ORDER BY created_at, id`).all({
      p: projectId ?? null,
    });
  }

  remove(id: string): void {
    this.sql('DELETE FROM server_groups WHERE id = ?').run(id);
  }

  addMember(groupId: string, serverId: string): void {
    this.sql('INSERT OR IGNORE INTO server_group_members (group_id, server_id) VALUES (?, ?)').run(groupId, serverId);
  }

  /** Members that are servers not deleted. */
  members(groupId: string): string[] {
    return this.sql<{ id: string }>(
      'SELECT m.server_id AS id FROM server_group_members m JOIN servers s ON s.id = m.server_id WHERE m.group_id = ? AND s.deleted = 0 ORDER BY s.created_at, s.id',
    )
      .all(groupId)
      .map((r) => r.id);
  }
}
