import { describe, expect, it } from 'vitest';
import { EventFeed } from '../../../src/compute/events.js';
import { newServer, useTempDirs } from '../store/temp-store.js';

const t = useTempDirs();
const who = { userId: 'u1', projectId: 'p1' };

describe('EventFeed', () => {
  it('gives each action once when recorded and each event once when it finishes, across polls', () => {
    const s = t.open();
    const srv = s.servers.insert(newServer());
    s.actions.start(srv.id, 'create', who); // before a following feed: not given
    const feed = new EventFeed(s, undefined, false);
    expect(feed.poll()).toEqual([]);
    const a = s.actions.start(srv.id, 'stop', who);
    const done = s.actions.event(a.id, 'compute_stop_instance');
    const line = (r: { action: string; status: string; event: string | null }) => `${r.action} ${r.status} ${r.event}`;
    expect(feed.poll().map(line)).toEqual(['stop started null']); // the event still runs
    expect(feed.poll()).toEqual([]);
    done('Error', 'boom');
    expect(feed.poll().map(line)).toEqual(['stop Error compute_stop_instance']);
    expect(feed.poll()).toEqual([]);
    // started and finished between two polls: one record for the event
    const b = s.actions.start(srv.id, 'start', who);
    s.actions.event(b.id, 'compute_start_instance')('Success');
    expect(feed.poll().map(line)).toEqual(['start started null', 'start Success compute_start_instance']);
  });

  it('from the start: the whole history; a project sees only its own', () => {
    const s = t.open();
    const srv = s.servers.insert(newServer());
    s.actions.start(srv.id, 'create', who);
    s.actions.start(srv.id, 'reboot', { userId: 'u2', projectId: 'p2' });
    expect(new EventFeed(s, undefined, true).poll().map((r) => r.action)).toEqual(['create', 'reboot']);
    expect(new EventFeed(s, 'p2', true).poll().map((r) => [r.action, r.server_name])).toEqual([['reboot', srv.name]]);
  });
});
