import { readFileSync } from 'node:fs';
import { expect, test } from 'vitest';

test('runs on a pure cgroup v2 host', () => {
  const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/);
  expect(controllers).toEqual(expect.arrayContaining(['cpu', 'memory', 'pids']));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  expect(mounts).not.toMatch(/ - cgroup /);
});
