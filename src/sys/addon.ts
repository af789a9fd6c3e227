/**
 * A native addon opened by path with process.dlopen, as require() does once it has
 * resolved the file: without createRequire (node:module, and the ES module loader behind
 * it) and the loader's resolution, ~1 ms of every command that opens the state database
 * (better-sqlite3's addon, src/store/db.ts).
 */
export function loadAddon<T>(file: string): T {
  const addon = { exports: {} as T };
  process.dlopen(addon, file);
  return addon.exports;
}
