/**
 * A volume attached to, or detached from, a running server's mount namespace through
 * native-bindings' `novabox-mountin` (setns into a mount namespace needs a single-threaded
 * process: see native-bindings/src/mountin.c). Errors: the helper's one line.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { nativeBuildDir } from './native.js';

export interface InitProcess {
  pid: number;
  /** field 22 of /proc/<pid>/stat: the helper enters nothing else */
  start: number;
}

function run(args: string[]): void {
  const r = spawnSync(join(nativeBuildDir(), 'novabox-mountin'), args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error((r.stderr ?? '').trim().split('\n').at(-1) || `novabox-mountin exited with ${r.status}`);
}

/** Mount the host directory `source` at `target` inside the server (the missing directories made, owned by uid:gid). */
export function mountInto(init: InitProcess, source: string, target: string, opts: { readOnly: boolean; uid: number; gid: number }): void {
  run(['attach', String(init.pid), String(init.start), source, target, opts.readOnly ? 'ro' : 'rw', String(opts.uid), String(opts.gid)]);
}

/** Unmount `target` inside the server (lazily: files still open keep it until closed). */
export function unmountFrom(init: InitProcess, target: string): void {
  run(['detach', String(init.pid), String(init.start), target]);
}
