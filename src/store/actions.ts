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
    const id = Number(
      this.sql('INSERT INTO instance_action_events (action_id, event, start_time) VALUES (?, ?, ?)').run(actionId, eventName, nowIso())
        .lastInsertRowid,
    );
    return (result, traceback) =>
      this.tx(() => {
        this.sql('UPDATE instance_action_events SET finish_time = ?, result = ?, traceback = ? WHERE id = ?').run(
          nowIso(),
          result,
          traceback ?? null,
          id,
        );
        if (result === 'Error') this.setMessage(actionId, 'Error');
      });
  }

  setMessage(actionId: number, message: string | null): void {
    this.sql('UPDATE instance_actions SET message = ? WHERE id = ?').run(message, actionId);
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
}
