/**
 * Test-only pause points. With NOVABOX_TEST_PAUSE=<point> the process stops itself
 * (SIGSTOP, the whole process) when it reaches that point of the real code path, so an
 * integration test can kill it at a known place (the crash repair of a create:
 * test/integration/servers.test.ts, network.test.ts; a receiver that said ok:
 * server-stream.test.ts; a volume snapshot copied with its server frozen: volumes.test.ts). Unset, it is one env lookup.
 */
export type TestPausePoint = 'create-recorded' | 'server-started' | 'idmap-leased' | 'server-idmap-leased' | 'receive-ok' | 'volume-copied';

export function testPause(point: TestPausePoint): void {
  if (process.env.NOVABOX_TEST_PAUSE === point) process.kill(process.pid, 'SIGSTOP');
}
