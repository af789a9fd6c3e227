/**
 * bin/novabox writes a command's V8 code cache after its first whole run after a build,
 * and every later start deserialises it. A run that did one-time work (`run` building the
 * busybox image on first use) compiled code later runs never call: its cache came out
 * ~50 % larger (284 against 188 KB) and every later `run` read and deserialised the rest.
 * Such a run says so here; the launcher then leaves the cache to a later run.
 */
let typical = true;

/** This run did one-time work: its code cache would not fit the runs after it. */
export function atypicalRun(): void {
  typical = false;
}

/** Read by bin/novabox before it writes a cache. */
export function cacheable(): boolean {
  return typical;
}
