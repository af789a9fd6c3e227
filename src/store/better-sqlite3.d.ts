// better-sqlite3 ships no types and @types/better-sqlite3 is not a dependency: the
// constructor is typed by the subset novabox uses (./sqlite.ts).
declare module 'better-sqlite3' {
  const Database: unknown;
  export default Database;
}
