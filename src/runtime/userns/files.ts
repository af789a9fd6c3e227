/**
 * Reading root's subordinate ids, and giving root an entry on first use as Incus and LXD
 * do. The files are changed as shadow's usermod changes them: under its lock protocol
 * (`<file>.lock` made by link(2) from `<file>.<pid>` holding the pid), so a concurrent
 * usermod or novabox waits, and written whole to a temporary file renamed over the old.
 */
import { chmodSync, closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { Conflict, NovaboxError } from '../../errors.js';
import { sleepSync } from '../../util/fs.js';
import {
  parseIdTable,
  parseSubid,
  planRootEntry,
  rootEntries,
  subidPaths,
  RANGE_SIZE,
  ROOT_ENTRY_SIZE,
  ROOT_ENTRY_START,
  type SubidPaths,
  type SubidState,
} from './subid.js';

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NovaboxError(
      'permission',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code}: use --userns host, or make it readable`,
    );
  }
}

function readState(paths: SubidPaths): SubidState & { missing: string[] } {
  const uid = readOptional(paths.subuid);
  const gid = readOptional(paths.subgid);
  return {
    subuid: parseSubid(uid ?? ''),
    subgid: parseSubid(gid ?? ''),
    passwd: parseIdTable(readOptional(paths.passwd) ?? ''),
    group: parseIdTable(readOptional(paths.group) ?? ''),
    paths,
    missing: [uid === undefined ? paths.subuid : '', gid === undefined ? paths.subgid : ''].filter(Boolean),
  };
}

/**
 * root's subordinate ids and the real users and groups, with an entry for root added
 * to whichever of /etc/subuid and /etc/subgid has none (said once on stderr).
 */
export function loadSubids(notice: (line: string) => void, paths = subidPaths()): SubidState {
  const s = readState(paths);
  if (rootEntries(s.subuid, s.passwd).length && rootEntries(s.subgid, s.passwd).length) return s;
  return addRootEntry(paths, notice);
}

function addRootEntry(paths: SubidPaths, notice: (line: string) => void): SubidState {
  const unlock: (() => void)[] = [];
  try {
    unlock.push(lockFile(paths.subuid));
    unlock.push(lockFile(paths.subgid));
    // again under the lock: another process may have added it meanwhile
    const s = readState(paths);
    const needUid = !rootEntries(s.subuid, s.passwd).length;
    const needGid = !rootEntries(s.subgid, s.passwd).length;
    if (!needUid && !needGid) return s;
    const entry = planRootEntry(s);
    if (!entry) {
      throw new Conflict(
        `no room for root's subordinate ids in ${paths.subuid} and ${paths.subgid}: every id from ${ROOT_ENTRY_START} on is another user's ` +
          `or a real id; give root ${RANGE_SIZE} or more free ids there (root:START:COUNT) or use --userns host`,
      );
    }
    const line = `root:${entry.start}:${entry.count}`;
    const files = [needUid ? paths.subuid : '', needGid ? paths.subgid : ''].filter(Boolean);
    for (const f of files) appendLine(f, line);
    notice(`novabox: added ${line} to ${files.join(' and ')} for isolated id ranges`);
    return readState(paths);
  } finally {
    for (const u of unlock.reverse()) u();
  }
}

function cannotWrite(file: string, err: unknown): NovaboxError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new NovaboxError(
    'permission',
    `cannot add root's subordinate ids to ${file} (${code}): add a line like root:${ROOT_ENTRY_START}:${ROOT_ENTRY_SIZE} to it yourself, or use --userns host`,
    { cause: err },
  );
}

function appendLine(file: string, line: string): void {
  let text = '';
  let mode = 0o644;
  try {
    text = readFileSync(file, 'utf8');
    mode = statSync(file).mode & 0o7777;
  } catch {
    /* a new file */
  }
  if (text && !text.endsWith('\n')) text += '\n';
  const tmp = `${file}+`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, `${text}${line}\n`);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* not made */
    }
    throw cannotWrite(file, err);
  }
}

/** shadow's commonio lock: `<file>.<pid>` holding "pid\0", linked to `<file>.lock`. */
function lockFile(file: string): () => void {
  const own = `${file}.${process.pid}`;
  const lock = `${file}.lock`;
  try {
    const fd = openSync(own, 'w', 0o600);
    writeSync(fd, `${process.pid}\0`);
    closeSync(fd);
  } catch (err) {
    throw cannotWrite(file, err);
  }
  try {
    for (let i = 0; ; i++) {
      try {
        linkSync(own, lock);
        return () => {
          try {
            unlinkSync(lock);
          } catch {
            /* gone */
          }
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw cannotWrite(file, err);
      }
      let holder: number;
      try {
        holder = Number.parseInt(readFileSync(lock, 'utf8').replace(/\0.*$/s, ''), 10);
      } catch {
        continue; // released meanwhile
      }
      if (!holderAlive(holder)) {
        try {
          unlinkSync(lock);
        } catch {
          /* broken by another */
        }
        continue;
      }
      if (i > 1000) throw new Conflict(`${lock} is held by process ${holder}: try again once it is done`);
      sleepSync(10);
    }
  } finally {
    try {
      unlinkSync(own);
    } catch {
      /* gone */
    }
  }
}

function holderAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
