import { randomUuid } from '../util/random.js';
import { NotFound } from '../errors.js';
import { statementCache, type Database, type Tx } from './sqlite.js';
import { nowIso } from './time.js';
import type { InstanceAction, ActionEvent, EventResult } from '../model/records.js';
export type { InstanceAction, ActionEvent, EventResult } from '../model/records.js';

export interface ActionStart {
  requestId?: string;
  userId: string;
  projectId: string;
  message?: string;
}

const ACTION_COLUMNS = `id, server_id AS serverId, request_id AS requestId, action, user_id AS userId,
  project_id AS projectId, start_time AS startTime, message`;

export class ActionRepo {
  private readonly sql: ReturnType<typeof statementCache>;

  constructor(
    db: Database,
    private readonly tx: Tx,
  ) {
    this.sql = statementCache(db);
  }

  /** Records an action; the request id defaults to a new `req-<uuid>`, as Nova's. */
  start(serverId: string, action: string, opts: ActionStart): { id: number; requestId: string } {
    const requestId = opts.requestId ?? `req-${randomUuid()}`;
    const r = this.sql(
      `INSERT INTO instance_actions (server_id, request_id, action, user_id, project_id, start_time, message)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(serverId, requestId, action, opts.userId, opts.projectId, nowIso(), opts.message ?? null);
    return { id: Number(r.lastInsertRowid), requestId };
  }

  /**
   * Starts an event of an action (`compute_stop_instance`); call the returned function
   * when it ends. An Error result marks the action's message `Error`, as Nova does.
   */
  event(actionId: number, eventName: string): (result: EventResult, traceback?: string) => void {
    const id = this.startEvent(actionId, eventName);
    return (result, traceback) => this.tx(() => this.finishEvent(actionId, id, result, traceback));
  }

  /** An event started in the caller's transaction (a create's, with its records); returns its id for finishEvent. */
  startEvent(actionId: number, eventName: string): number {
    return Number(
      this.sql('INSERT INTO instance_action_events (action_id, event, start_time) VALUES (?, ?, ?)').run(actionId, eventName, nowIso())
        .lastInsertRowid,
    );
  }

  /** Ends an event in the caller's transaction; an Error result marks the action's message `Error`, as Nova does. */
  finishEvent(actionId: number, eventId: number, result: EventResult, traceback?: string): void {
    this.sql('UPDATE instance_action_events SET finish_time = ?, result = ?, traceback = ? WHERE id = ?').run(
      nowIso(),
      result,
      traceback ?? null,
      eventId,
    );
    if (result === 'Error') this.setMessage(actionId, 'Error');
  }

  setMessage(actionId: number, message: string | null): void {
    this.sql('UPDATE instance_actions SET message = ? WHERE id = ?').run(message, actionId);
  }

  /** Takes back a server's actions from one on (and their events): an import undone over a server's tombstone. */
  removeFrom(serverId: string, actionId: number): void {
    this.sql('DELETE FROM instance_actions WHERE server_id = ? AND id >= ?').run(serverId, actionId);
  }

  /** Newest first. */
  list(serverId: string): InstanceAction[] {
    return this.sql<InstanceAction>(`SELECT ${ACTION_COLUMNS} FROM instance_actions WHERE server_id = ? ORDER BY id DESC`).all(serverId);
  }

  /** The newest action of a server, optionally of one kind (`create`). */
  latest(serverId: string, action?: string): InstanceAction | undefined {
    return action === undefined
      ? this.sql<InstanceAction>(`SELECT ${ACTION_COLUMNS} FROM instance_actions WHERE server_id = ? ORDER BY id DESC LIMIT 1`).get(
          serverId,
        )
      : this.sql<InstanceAction>(
          `SELECT ${ACTION_COLUMNS} FROM instance_actions WHERE server_id = ? AND action = ? ORDER BY id DESC LIMIT 1`,
        ).get(serverId, action);
  }

  get(serverId: string, requestId: string): InstanceAction & { events: ActionEvent[] } {
    const a = this.sql<InstanceAction>(
      `SELECT ${ACTION_COLUMNS} FROM instance_actions WHERE server_id = ? AND request_id = ? ORDER BY id DESC LIMIT 1`,
    ).get(serverId, requestId);
    if (!a) throw new NotFound(`action "${requestId}" of server ${serverId} not found`);
    const events = this.sql<ActionEvent>(
      `SELECT event, start_time AS startTime, finish_time AS finishTime, result, traceback
       FROM instance_action_events WHERE action_id = ? ORDER BY id`,
    ).all(a.id);
    return { ...a, events };
  }

  /** The newest action id and event id (a follower starts after them). */
  cursor(): { actionId: number; eventId: number } {
    const r = this.sql<{ a: number | null; e: number | null }>(
      'SELECT (SELECT MAX(id) FROM instance_actions) AS a, (SELECT MAX(id) FROM instance_action_events) AS e',
    ).get();
    return { actionId: r?.a ?? 0, eventId: r?.e ?? 0 };
  }

  /** Actions of every server after `actionId`, oldest first, with the server's name (`event list`). */
  since(actionId: number, projectId?: string, limit = 1000): (InstanceAction & { serverName: string | null })[] {
    return this.sql<InstanceAction & { serverName: string | null }>(
      `SELECT a.id, a.server_id AS serverId, a.request_id AS requestId, a.action, a.user_id AS userId,
         a.project_id AS projectId, a.start_time AS startTime, a.message, s.name AS serverName
       FROM instance_actions a LEFT JOIN servers s ON s.id = a.server_id
       WHERE a.id > ? AND (? IS NULL OR a.project_id = ?) ORDER BY a.id LIMIT ?`,
    ).all(actionId, projectId ?? null, projectId ?? null, limit);
  }

  /** Events finished among `ids` or started after `afterId`, with their action's id. */
  eventsSince(afterId: number, ids: number[]): (ActionEvent & { id: number; actionId: number })[] {
    const cols = `id, action_id AS actionId, event, start_time AS startTime, finish_time AS finishTime, result, traceback`;
    const newer = this.sql<ActionEvent & { id: number; actionId: number }>(
      `SELECT ${cols} FROM instance_action_events WHERE id > ? ORDER BY id`,
    ).all(afterId);
    if (!ids.length) return newer;
    const pending = this.sql<ActionEvent & { id: number; actionId: number }>(
      `SELECT ${cols} FROM instance_action_events WHERE id IN (SELECT value FROM json_each(?)) AND finish_time IS NOT NULL ORDER BY id`,
    ).all(JSON.stringify(ids));
    return [...pending, ...newer];
  }

  /** One action by its row id, with the server's name. */
  byId(id: number): (InstanceAction & { serverName: string | null }) | undefined {
    return this.sql<InstanceAction & { serverName: string | null }>(
      `SELECT a.id, a.server_id AS serverId, a.request_id AS requestId, a.action, a.user_id AS userId,
         a.project_id AS projectId, a.start_time AS startTime, a.message, s.name AS serverName
       FROM instance_actions a LEFT JOIN servers s ON s.id = a.server_id WHERE a.id = ?`,
    ).get(id);
  }
}
