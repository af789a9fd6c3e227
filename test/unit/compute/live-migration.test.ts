import { describe, expect, it } from 'vitest';
import { type LiveCandidate, liveRefusal } from '../../../src/compute/migration/live.js';

const ok: LiveCandidate = {
  name: 'web',
  vmState: 'active',
  network: 'none',
  userns: 'host',
  init: 'novabox',
  volumes: 0,
  seed: false,
  ports: 0,
};

describe('liveRefusal: which servers move live, and why not in one sentence', () => {
  it('an ACTIVE --userns host server with novabox-init, no volumes, no seed moves, with --network none or on the bridge without published ports', () => {
    expect(liveRefusal(ok)).toBeNull();
    expect(liveRefusal({ ...ok, network: 'novabox' })).toBeNull();
  });

  it.each<[string, Partial<LiveCandidate>, RegExp]>([
    ['SHUTOFF', { vmState: 'stopped' }, /it is not ACTIVE \(vm_state stopped\), and only a running process tree can be dumped/],
    ['PAUSED', { vmState: 'paused' }, /it is not ACTIVE \(vm_state paused\)/],
    ['--userns auto', { userns: 'auto' }, /its own user namespace \(--userns auto\), whose idmapped root/],
    ['systemd', { init: 'systemd' }, /systemd is its pid 1/],
    ['published ports', { network: 'novabox', ports: 1 }, /it has published ports, which the target does not publish again/],
    ['--network host', { network: 'host' }, /shares this host's network namespace \(--network host\)/],
    ['volumes', { volumes: 1 }, /it has volumes attached/],
    ['a seed', { seed: true }, /its instance data \(a NoCloud seed\)/],
  ])('%s is refused', (_what, change, why) => {
    const said = liveRefusal({ ...ok, ...change });
    expect(said).toMatch(/^server "web" cannot be migrated live: /);
    expect(said).toMatch(why);
    expect(said).toMatch(/; migrate it without --live \(its writable layer is pre-copied while it runs\)$/);
    expect(said?.split('. ').length).toBe(1);
  });
});
