/**
 * bin/novabox writes a command's V8 code cache after its first whole run after a build,
 * and every later start deserialises it. A run that did one-time work (`run` building the
 * busybox image on first use) compiled code later runs never call: its cache came out
 * ~50 % larger (284 against 188 KB) and every later `run` read and deserialised the rest.
 * Such a run says so here; the launcher then leaves the cache to a later run.
 */
let typical = true;
/** `run` on the bridge network (the store, leases, veths) or not: each has a cache of its own */
let kind: 'local' | 'net' = 'local';

/** This run did one-time work: its code cache would not fit the runs after it. */
export function atypicalRun(): void {
  typical = false;
}

/**
 * `run` on the bridge network compiles the store and the compute service; a cache written
 * by such a run was ~45 % larger (276 against 190 KB: +1.3 ms to every `--network none`
 * start that read it), and one written without them left a bridge run compiling them.
 */
export function runKind(k: 'local' | 'net'): void {
  kind = k;
}

/**
 * Read by bin/novabox before it writes a cache: false after one-time work, or when the run
 * was not of the kind (`expected`) whose cache file the launcher chose before it ran.
 */
export function cacheable(expected?: string): boolean {
  return typical && (expected === undefined || expected === kind);
}
