/**
 * `event list [--follow]`: the instance actions of every server as one stream of records,
 * for scripts (podman events, incus monitor). An action gives a `started` record when it
 * is recorded and one per event of it when that event finishes, with its result.
 *
 * Following is daemonless: the feed remembers the last action and event ids it saw and
 * the events still running, and re-reads after them. Wake-ups come from inotify on the
 * database's directory (every commit writes the WAL, `novabox.db-wal`), and a timer every
 * `checkMs` in case a wake-up was missed; each read is two indexed range queries.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Store } from '../store/db.js';
import type { InstanceAction } from '../model/records.js';

export interface ActivityRecord {
  time: string;
  server_id: string;
  server_name: string | null;
  request_id: string;
  action: string;
  /** `started`, or the result of the event that finished */
  status: 'started' | 'Success' | 'Error';
  event: string | null;
  message: string | null;
  project_id: string;
  user_id: string;
}

type ActionRow = InstanceAction & { serverName: string | null };

const PAGE = 1000;

export class EventFeed {
  private actionId = 0;
  private eventId = 0;
  /** events seen running: id -> their action's id */
  private readonly pending = new Map<number, number>();
  private readonly actions = new Map<number, ActionRow>();

  constructor(
    private readonly store: Store,
    private readonly projectId: string | undefined,
    fromStart: boolean,
  ) {
    if (!fromStart) ({ actionId: this.actionId, eventId: this.eventId } = store.actions.cursor());
  }

  /**
   * What happened since the last call, oldest first. Both reads in one read transaction
   * (one snapshot): an action and its finished event committed between the two would
   * otherwise give the event's record before the action's `started`, which the next poll
   * then prints after it.
   */
  poll(): ActivityRecord[] {
    return this.store.db.transaction(() => this.read()).deferred();
  }

  private read(): ActivityRecord[] {
    const out: ActivityRecord[] = [];
    for (;;) {
      const rows = this.store.actions.since(this.actionId, this.projectId, PAGE);
      for (const a of rows) {
        this.actionId = a.id;
        this.remember(a);
        out.push(record(a, 'started', null, a.startTime));
      }
      if (rows.length < PAGE) break;
    }
    for (const e of this.store.actions.eventsSince(this.eventId, [...this.pending.keys()])) {
      if (e.id > this.eventId) this.eventId = e.id;
      if (!e.finishTime || !e.result) {
        this.pending.set(e.id, e.actionId);
        continue;
      }
      this.pending.delete(e.id);
      const a = this.actions.get(e.actionId) ?? this.store.actions.byId(e.actionId);
      if (!a || (this.projectId && a.projectId !== this.projectId)) continue;
      out.push(record(a, e.result, e.event, e.finishTime));
    }
    return out;
  }

  private remember(a: ActionRow): void {
    this.actions.set(a.id, a);
    if (this.actions.size > 4 * PAGE) this.actions.delete(this.actions.keys().next().value as number);
  }
}

function record(a: ActionRow, status: ActivityRecord['status'], event: string | null, time: string): ActivityRecord {
  return {
    time,
    server_id: a.serverId,
    server_name: a.serverName,
    request_id: a.requestId,
    action: a.action,
    status,
    event,
    message: a.message,
    project_id: a.projectId,
    user_id: a.userId,
  };
}

/** Feed records to `write` as they happen until `signal` aborts. */
export function followEvents(
  store: Store,
  feed: EventFeed,
  o: { write: (r: ActivityRecord) => void; signal: AbortSignal; checkMs?: number },
): Promise<void> {
  return new Promise((resolve) => {
    let queued = false;
    const wake = () => {
      if (queued) return;
      queued = true;
      setImmediate(() => {
        queued = false;
        if (!o.signal.aborted) for (const r of feed.poll()) o.write(r);
      });
    };
    let watcher: FSWatcher | undefined;
    const wal = `${basename(store.path)}-wal`;
    try {
      watcher = watch(dirname(store.path), (_e, f) => {
        if (f === null || f === wal) wake();
      });
    } catch {
      /* no inotify: the timer alone */
    }
    const timer = setInterval(wake, o.checkMs ?? (watcher ? 1000 : 200));
    const finish = () => {
      clearInterval(timer);
      watcher?.close();
      resolve();
    };
    if (o.signal.aborted) finish();
    else o.signal.addEventListener('abort', finish, { once: true });
    wake();
  });
}
