import { describe, expect, it } from 'vitest';
import { newServer, useTempDirs } from './temp-store.js';

const t = useTempDirs();

const facts = {
  monitorPid: 100,
  monitorStart: 5,
  initPid: 101,
  initStart: 6,
  bootId: 'b',
  cgroupPath: '/sys/fs/cgroup/x',
  startedAt: '2024-01-01T00:00:00.000000',
};

describe('ServerRepo insert/get/find', () => {
  it('inserts with defaults and reads back camelCase', () => {
    const s = t.open();
    const ins = s.servers.insert(newServer({ name: 'web', metadata: { a: 'b' }, keyName: undefined }));
    const got = s.servers.get(ins.id)!;
    expect(got).toEqual(ins);
    expect(got).toMatchObject({
      name: 'web',
      vmState: 'active',
      taskState: null,
      powerState: 1,
      metadata: { a: 'b' },
      keyName: null,
      accessIpv4: '',
      accessIpv6: '',
      locked: false,
      lockedBy: null,
      fault: null,
      ephemeral: false,
      deleted: false,
      network: 'none',
      launchedAt: null,
      terminatedAt: null,
    });
    expect(got.createdAt).toBe(got.updatedAt);
    expect(got.createdAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/);
  });

  it('round-trips fault, lock and booleans', () => {
    const s = t.open();
    const fault = { code: 500, message: 'boom', details: 'trace', created: '2024-01-01T00:00:00.000000' };
    const ins = s.servers.insert(newServer({ vmState: 'error', fault, locked: true, lockedBy: 'admin', ephemeral: true }));
    expect(s.servers.get(ins.id)).toMatchObject({ fault, locked: true, lockedBy: 'admin', ephemeral: true });
  });

  it('refuses a duplicate id', () => {
    const s = t.open();
    const a = s.servers.insert(newServer());
    expect(() => s.servers.insert(newServer({ id: a.id }))).toThrow(expect.objectContaining({ code: 'conflict' }));
  });

  it('get is undefined for missing or deleted servers', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ deleted: true, vmState: 'deleted' }));
    expect(s.servers.get(a.id)).toBeUndefined();
    expect(s.servers.get('nope')).toBeUndefined();
  });

  it('finds by id, then by unique name, within a project', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ name: 'web' }));
    const b = s.servers.insert(newServer({ name: a.id })); // a name that looks like another's id
    expect(s.servers.find(a.id).id).toBe(a.id);
    expect(s.servers.find('web').id).toBe(a.id);
    expect(s.servers.find(b.name).id).toBe(a.id);
    expect(s.servers.find('web', 'p1').id).toBe(a.id);
    expect(() => s.servers.find('web', 'p2')).toThrow('server "web" not found');
    expect(() => s.servers.find(a.id, 'p2')).toThrow(expect.objectContaining({ code: 'not-found' }));
    expect(() => s.servers.find('nope')).toThrow('server "nope" not found');
  });

  it('an ambiguous name is a Conflict listing the ids', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ name: 'dup' }));
    const b = s.servers.insert(newServer({ name: 'dup' }));
    s.servers.insert(newServer({ name: 'dup', projectId: 'p2' }));
    s.servers.insert(newServer({ name: 'dup', deleted: true }));
    expect(() => s.servers.find('dup', 'p1')).toThrow(`more than one server is named "dup": ${a.id}, ${b.id}; use the id`);
    expect(() => s.servers.find('dup')).toThrow(expect.objectContaining({ code: 'conflict' }));
  });
});

describe('ServerRepo.list', () => {
  function fill() {
    const s = t.open();
    const rows = [
      s.servers.insert(newServer({ name: 'web-1', vmState: 'active' })),
      s.servers.insert(newServer({ name: 'web-2', vmState: 'stopped' })),
      s.servers.insert(newServer({ name: 'db', vmState: 'active', taskState: 'rebooting' })),
      s.servers.insert(newServer({ name: 'other', projectId: 'p2', vmState: 'active' })),
      s.servers.insert(newServer({ name: 'gone', vmState: 'deleted', deleted: true })),
    ];
    return { s, ids: rows.map((r) => r.id) };
  }

  it('lists oldest first without deleted servers, scoped to a project', () => {
    const { s, ids } = fill();
    expect(s.servers.list().map((x) => x.id)).toEqual(ids.slice(0, 4));
    expect(s.servers.list({ projectId: 'p1' }).map((x) => x.id)).toEqual(ids.slice(0, 3));
  });

  it.each([
    ['ACTIVE', [0, 3]],
    ['active', [0, 3]],
    ['SHUTOFF', [1]],
    ['REBOOT', [2]],
    ['BOGUS', []],
  ])('filters by derived status %s', (status, want) => {
    const { s, ids } = fill();
    expect(s.servers.list({ status }).map((x) => x.id)).toEqual(want.map((i) => ids[i]));
  });

  it.each([
    ['web', [0, 1]],
    ['^web-2$', [1]],
    ['b', [0, 1, 2]],
    ['o', [3]],
    ['^$', []],
  ])('filters by name regex %s', (name, want) => {
    const { s, ids } = fill();
    expect(s.servers.list({ name }).map((x) => x.id)).toEqual(want.map((i) => ids[i]));
  });

  it('refuses an invalid regex', () => {
    const { s } = fill();
    expect(() => s.servers.list({ name: '(' })).toThrow(expect.objectContaining({ code: 'bad-request' }));
  });

  it('pages with limit and marker', () => {
    const { s, ids } = fill();
    expect(s.servers.list({ limit: 2 }).map((x) => x.id)).toEqual(ids.slice(0, 2));
    expect(s.servers.list({ limit: 2, marker: ids[1] }).map((x) => x.id)).toEqual(ids.slice(2, 4));
    expect(s.servers.list({ limit: 2, marker: ids[3] })).toEqual([]);
    expect(s.servers.list({ limit: 0 })).toEqual([]);
    expect(s.servers.list({ limit: 100 })).toHaveLength(4);
    // limit counts matches after the filters, marker works when the marker itself is filtered out
    expect(s.servers.list({ status: 'ACTIVE', limit: 1, marker: ids[1] }).map((x) => x.id)).toEqual([ids[3]]);
  });

  it('pages by id when created_at ties', () => {
    const s = t.open();
    const at = '2024-01-01T00:00:00.000000';
    for (const id of ['c', 'a', 'b']) s.servers.insert(newServer({ id, createdAt: at }));
    expect(s.servers.list().map((x) => x.id)).toEqual(['a', 'b', 'c']);
    expect(s.servers.list({ marker: 'a' }).map((x) => x.id)).toEqual(['b', 'c']);
  });

  it('an unknown marker (or limit < 0) is a BadRequest', () => {
    const { s, ids } = fill();
    expect(() => s.servers.list({ marker: 'nope' })).toThrow('marker [nope] not found');
    expect(() => s.servers.list({ marker: ids[3], projectId: 'p1' })).toThrow(/marker .* not found/);
    expect(() => s.servers.list({ limit: -1 })).toThrow(expect.objectContaining({ code: 'bad-request' }));
    expect(() => s.servers.list({ limit: 1.5 })).toThrow(expect.objectContaining({ code: 'bad-request' }));
  });

  it('changesSince returns servers updated at or after it, deleted ones included', () => {
    const s = t.open();
    const old = s.servers.insert(newServer({ createdAt: '2024-01-01T00:00:00.000000' }));
    const mid = s.servers.insert(newServer({ createdAt: '2024-02-01T00:00:00.000000' }));
    const gone = s.servers.insert(
      newServer({ createdAt: '2024-01-01T00:00:00.000000', updatedAt: '2024-03-01T00:00:00.000000', deleted: true }),
    );
    expect(s.servers.list({ changesSince: '2024-02-01T00:00:00Z' }).map((x) => x.id)).toEqual([gone.id, mid.id]);
    expect(s.servers.list({ changesSince: '2024-02-01T00:00:00.000001' }).map((x) => x.id)).toEqual([gone.id]);
    expect(s.servers.list({ changesSince: '2023-12-31T00:00:00Z' })).toHaveLength(3);
    s.servers.update(old.id, { name: 'renamed' });
    expect(s.servers.list({ changesSince: '2024-03-02' }).map((x) => x.id)).toEqual([old.id]);
    expect(() => s.servers.list({ changesSince: 'last week' })).toThrow(expect.objectContaining({ code: 'bad-request' }));
  });
});

describe('ServerRepo.update / transition', () => {
  it('update applies the patch, bumps updated_at and keeps the rest', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ metadata: { k: 'v' } }));
    const b = s.servers.update(a.id, { name: 'new', accessIpv4: '10.0.0.1', fault: null, locked: true, lockedBy: 'owner' });
    expect(b).toEqual({ ...a, name: 'new', accessIpv4: '10.0.0.1', locked: true, lockedBy: 'owner', updatedAt: b.updatedAt });
    expect(b.updatedAt > a.updatedAt).toBe(true);
    expect(s.servers.get(a.id)).toEqual(b);
    expect(() => s.servers.update('nope', { name: 'x' })).toThrow(expect.objectContaining({ code: 'not-found' }));
  });

  it('moves from an allowed state and returns the new row', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ vmState: 'active' }));
    const b = s.servers.transition(a.id, { from: ['active', 'error'], action: 'stop', to: { taskState: 'powering-off' } });
    expect(b).toMatchObject({ vmState: 'active', taskState: 'powering-off' });
    expect(b.updatedAt > a.updatedAt).toBe(true);
    const c = s.servers.transition(a.id, {
      from: ['active'],
      taskState: 'powering-off',
      action: 'stop',
      to: { vmState: 'stopped', taskState: null, powerState: 4 },
    });
    expect(s.servers.get(a.id)).toEqual(c);
    expect(c).toMatchObject({ vmState: 'stopped', taskState: null, powerState: 4 });
  });

  it('refuses the wrong vm_state with Nova message', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ vmState: 'stopped' }));
    expect(() => s.servers.transition(a.id, { from: ['active'], action: 'pause', to: { taskState: 'pausing' } })).toThrow(
      `Cannot 'pause' instance ${a.id} while it is in vm_state stopped`,
    );
    expect(s.servers.get(a.id)).toEqual(a);
  });

  it('refuses while a task runs, unless allowTask', () => {
    const s = t.open();
    const a = s.servers.insert(newServer({ vmState: 'active', taskState: 'image_snapshot' }));
    const err = (() => {
      try {
        s.servers.transition(a.id, { from: ['active'], action: 'stop', to: { taskState: 'powering-off' } });
      } catch (e) {
        return e as Error & { code: string };
      }
    })();
    expect(err?.code).toBe('conflict');
    expect(err?.message).toBe(`Cannot 'stop' instance ${a.id} while it is in task_state image_snapshot`);
    const b = s.servers.insert(newServer({ vmState: 'active' }));
    expect(() => s.servers.transition(b.id, { from: ['active'], taskState: 'powering-off', action: 'stop', to: {} })).toThrow(
      `Cannot 'stop' instance ${b.id} while it is in task_state None`,
    );
    expect(
      s.servers.transition(a.id, { from: ['active'], allowTask: true, action: 'delete', to: { taskState: 'deleting' } }).taskState,
    ).toBe('deleting');
  });

  it('a missing server is NotFound', () => {
    const s = t.open();
    expect(() => s.servers.transition('nope', { from: ['active'], action: 'stop', to: {} })).toThrow(
      expect.objectContaining({ code: 'not-found' }),
    );
  });
});

describe('runtime facts', () => {
  it('sets, replaces, reads and clears', () => {
    const s = t.open();
    const a = s.servers.insert(newServer());
    expect(s.servers.getRuntime(a.id)).toBeUndefined();
    s.servers.setRuntime(a.id, facts);
    expect(s.servers.getRuntime(a.id)).toEqual(facts);
    s.servers.setRuntime(a.id, { ...facts, initPid: 202 });
    expect(s.servers.getRuntime(a.id)?.initPid).toBe(202);
    s.servers.clearRuntime(a.id);
    expect(s.servers.getRuntime(a.id)).toBeUndefined();
  });

  it('needs an existing server', () => {
    const s = t.open();
    expect(() => s.servers.setRuntime('nope', facts)).toThrow(/FOREIGN KEY/);
  });

  it('go with the server on remove, with its actions and events', () => {
    const s = t.open();
    const a = s.servers.insert(newServer());
    s.servers.setRuntime(a.id, facts);
    const act = s.actions.start(a.id, 'create', { userId: 'u1', projectId: 'p1' });
    s.actions.event(act.id, 'compute__do_build_and_run_instance')('Success');
    s.servers.remove(a.id);
    expect(s.servers.get(a.id)).toBeUndefined();
    expect(s.servers.getRuntime(a.id)).toBeUndefined();
    for (const table of ['server_runtime', 'instance_actions', 'instance_action_events']) {
      expect(s.db.prepare(`SELECT count(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
    }
    expect(() => s.servers.remove(a.id)).toThrow(expect.objectContaining({ code: 'not-found' }));
  });
});
