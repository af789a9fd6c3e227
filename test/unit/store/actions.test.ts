import { describe, expect, it } from 'vitest';
import { newServer, useTempDirs } from './temp-store.js';

const t = useTempDirs();
const who = { userId: 'u1', projectId: 'p1' };

describe('ActionRepo', () => {
  it('records actions newest first with a generated request id', () => {
    const s = t.open();
    const srv = s.servers.insert(newServer());
    const create = s.actions.start(srv.id, 'create', { ...who, requestId: 'req-given' });
    const reboot = s.actions.start(srv.id, 'reboot', who);
    expect(create.requestId).toBe('req-given');
    expect(reboot.requestId).toMatch(/^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const list = s.actions.list(srv.id);
    expect(list.map((a) => a.action)).toEqual(['reboot', 'create']);
    expect(list[1]).toEqual({
      id: create.id,
      serverId: srv.id,
      requestId: 'req-given',
      action: 'create',
      userId: 'u1',
      projectId: 'p1',
      startTime: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/),
      message: null,
    });
    expect(s.actions.latest(srv.id)?.action).toBe('reboot');
    expect(s.actions.latest(srv.id, 'create')?.id).toBe(create.id);
    expect(s.actions.latest(srv.id, 'stop')).toBeUndefined();
    expect(s.actions.list('other')).toEqual([]);
  });

  it('records events with their results; an Error marks the action', () => {
    const s = t.open();
    const srv = s.servers.insert(newServer());
    const a = s.actions.start(srv.id, 'stop', { ...who, message: 'hello' });
    const first = s.actions.event(a.id, 'compute_stop_instance');
    let got = s.actions.get(srv.id, a.requestId);
    expect(got.message).toBe('hello');
    expect(got.events).toEqual([
      { event: 'compute_stop_instance', startTime: expect.any(String), finishTime: null, result: null, traceback: null },
    ]);
    first('Success');
    s.actions.event(a.id, 'compute_power_off')('Error', 'Traceback: boom');
    got = s.actions.get(srv.id, a.requestId);
    expect(got.events.map((e) => [e.event, e.result, e.traceback])).toEqual([
      ['compute_stop_instance', 'Success', null],
      ['compute_power_off', 'Error', 'Traceback: boom'],
    ]);
    expect(got.events[0]!.finishTime! >= got.events[0]!.startTime).toBe(true);
    expect(got.message).toBe('Error');
    s.actions.setMessage(a.id, 'changed');
    expect(s.actions.get(srv.id, a.requestId).message).toBe('changed');
  });

  it('get is NotFound for an unknown request id or server', () => {
    const s = t.open();
    const srv = s.servers.insert(newServer());
    const a = s.actions.start(srv.id, 'create', who);
    expect(() => s.actions.get(srv.id, 'req-nope')).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(() => s.actions.get('other', a.requestId)).toThrow(`action "${a.requestId}" of server other not found`);
  });

  it('needs an existing server', () => {
    const s = t.open();
    expect(() => s.actions.start('nope', 'create', who)).toThrow(/FOREIGN KEY/);
  });
});
