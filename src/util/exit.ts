/**
 * A quick way out for bin/novabox once a command is done: libc's _exit(2), which skips
 * Node's teardown (joining libuv's thread pool, disposing V8, addon cleanup hooks):
 * ~1 ms of every `run`. src/sys/native.ts installs it when it loads build/novabox.node or
 * koffi; commands that load neither exit the ordinary way. It loses nothing
 * process.exit() keeps: neither flushes a pipe write still queued in libuv, no code of
 * ours listens for 'exit', and SQLite recovers a WAL left open. Not used under
 * --cpu-prof or NODE_V8_COVERAGE and the like (their output is written at teardown): the
 * launcher checks.
 */
let hook: ((code: number) => void) | undefined;

export function setExitHook(f: (code: number) => void): void {
  hook = f;
}

/** Exit now with `code` if the quick way is installed; returns only if it is not. */
export function exitNow(code: number): void {
  hook?.(code);
}
